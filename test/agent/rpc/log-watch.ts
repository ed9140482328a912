// Reads an agent child's JSON log lines (harness spawnAgent's `logs`) for a
// message about one connection, named by the client's local port (the
// agent logs it as `port`).
export interface Found { index: number; line: Record<string, unknown> }

export class LogWatch {
  private parsed: (Record<string, unknown> | undefined)[] = [];

  constructor(private readonly logs: string[]) {}

  /** The first line with this msg (and, given a port, that port). */
  find(msg: string, port?: number): Found | undefined {
    this.catchUp();
    for (let i = 0; i < this.parsed.length; i++) {
      const l = this.parsed[i];
      if (l && l.msg === msg && (port === undefined || l.port === port)) return { index: i, line: l };
    }
    return undefined;
  }

  /** Every line with this msg. */
  all(msg: string): Found[] {
    this.catchUp();
    const out: Found[] = [];
    this.parsed.forEach((l, index) => { if (l?.msg === msg) out.push({ index, line: l }); });
    return out;
  }

  private catchUp(): void {
    for (let i = this.parsed.length; i < this.logs.length; i++) {
      try {
        this.parsed.push(JSON.parse(this.logs[i]!) as Record<string, unknown>);
      } catch {
        this.parsed.push(undefined);
      }
    }
  }
}
