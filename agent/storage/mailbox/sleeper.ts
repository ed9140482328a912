// Sleeps that stop() can cut short: the mailboxes' poll loops sleep here, so
// stopping them does not wait out a poll interval.
export class Sleeper {
  private readonly wakers = new Set<() => void>();

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(t); this.wakers.delete(done); resolve(); };
      const t = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** Ends every sleep now. */
  wakeAll(): void {
    for (const w of [...this.wakers]) w();
  }
}
