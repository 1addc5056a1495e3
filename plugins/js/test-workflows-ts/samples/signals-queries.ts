// In the shape of temporalio/samples-typescript `signals-queries`
// (src/workflows.ts): a workflow blocked until a signal unblocks it, a
// query telling whether it is still blocked, and a cancellation that is
// logged and rethrown. Written for `@temporalio/workflow`; only the import
// line differs.
import * as wf from 'caisson-workflow';

export const unblockSignal = wf.defineSignal('unblock');
export const isBlockedQuery = wf.defineQuery<boolean>('isBlocked');

export async function unblockOrCancel(): Promise<void> {
  let isBlocked = true;
  wf.setHandler(unblockSignal, () => void (isBlocked = false));
  wf.setHandler(isBlockedQuery, () => isBlocked);
  wf.log.info('Blocked');
  try {
    await wf.condition(() => !isBlocked);
    wf.log.info('Unblocked');
  } catch (err) {
    if (err instanceof wf.CancelledFailure) {
      wf.log.info('Cancelled');
    }
    throw err;
  }
}
