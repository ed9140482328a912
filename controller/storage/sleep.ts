// A pause that ends early, with the signal's reason, when the controller stops: a job waiting
// for the SPM or for a task must not hold up a shutdown (the job is resumed at the next start).

// `wake`, when given, ends the pause early without an error (a job's cancel: the caller acts on it).
export function sleepOrAbort(ms: number, signal: AbortSignal, wake?: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (wake?.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); wake?.removeEventListener('abort', onWake); };
    const onAbort = () => { done(); reject(signal.reason); };
    const onWake = () => { done(); resolve(); };
    const timer = setTimeout(() => { done(); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
    wake?.addEventListener('abort', onWake, { once: true });
  });
}
