/** Failing over within one request: the decisions, the fallback attempt's request, and the processor's egress. */
export { failoverReason, nextFallback, fallbackRouting, type FailoverReason } from './policy';
export { attemptRequest, type AttemptRequest } from './request';
export { AttemptFailure, HttpEgress, type AttemptResponse, type Egress, type HttpEgressOptions } from './egress';
