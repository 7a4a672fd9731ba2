/** The processor's tests find `../shared` through the project's one helper (fail under CI, skip otherwise). */
export { SHARED_DIR, describeWithShared, sharedPath } from '../../../test/support/shared';
