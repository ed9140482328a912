// Operations on one VM run one at a time, in the order they were asked for;
// operations on different VMs run in parallel. Nothing waits on a lock with a
// timeout: an operation simply runs when its turn comes.
export class OpQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  get length(): number {
    return this.pending;
  }

  run<T>(op: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(op, op);
    this.tail = result.then(() => { this.pending--; }, () => { this.pending--; });
    return result;
  }
}
