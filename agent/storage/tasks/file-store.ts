// Where tasks are kept: the TaskStore interface, and its file version for a
// file master domain: <domain>/master/tasks/<taskID>.task, one JSON record
// per task (VDSM keeps its tasks in the master file system's tasks/ too).
// Every write is whole: a temp file, fsync, rename, fsync of the folder, so
// a crash leaves either the old record or the new one, never a torn one.
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { TaskPersistError } from './errors.js';
import { decodeRecord, type TaskRecord } from './record.js';

export interface TaskStore {
  /** For logs: "file:<dir>" or "block:<lv path>". */
  readonly location: string;
  /** Every record kept; unreadable ones are logged and set aside, never returned. */
  load(): Promise<TaskRecord[]>;
  save(r: TaskRecord): Promise<void>;
  remove(taskID: string): Promise<void>;
  close(): Promise<void>;
}

const EXT = '.task';

export class FileTaskStore implements TaskStore {
  private constructor(readonly dir: string, private readonly log: Logger) {}

  get location(): string { return `file:${this.dir}`; }

  static async open(dir: string, log: Logger): Promise<FileTaskStore> {
    await mkdir(dir, { recursive: true }).catch((e: unknown) => { throw new TaskPersistError(`cannot create the task folder ${dir}`, { cause: e }); });
    return new FileTaskStore(dir, log);
  }

  async load(): Promise<TaskRecord[]> {
    const names = await readdir(this.dir).catch((e: unknown) => { throw new TaskPersistError(`cannot list ${this.dir}`, { cause: e }); });
    const out: TaskRecord[] = [];
    for (const name of names) {
      const file = join(this.dir, name);
      if (name.endsWith('.tmp')) { // a write cut short: the record it was replacing is still there
        await rm(file, { force: true });
        continue;
      }
      if (!name.endsWith(EXT)) continue;
      try {
        const r = decodeRecord(await readFile(file, 'utf8'));
        if (`${r.id}${EXT}` !== name) throw new Error(`holds task ${r.id}`);
        out.push(r);
      } catch (e) {
        this.log.error('unreadable task record set aside', { file, err: e });
        await rename(file, `${file}.bad`).catch(() => {});
      }
    }
    return out;
  }

  async save(r: TaskRecord): Promise<void> {
    const file = join(this.dir, `${r.id}${EXT}`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(JSON.stringify(r));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      await this.syncDir();
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => {});
      throw new TaskPersistError(`cannot write task ${r.id} to ${this.dir}: ${(e as Error).message}`, { cause: e });
    }
  }

  async remove(taskID: string): Promise<void> {
    try {
      await rm(join(this.dir, `${taskID}${EXT}`), { force: true });
      await this.syncDir();
    } catch (e) {
      throw new TaskPersistError(`cannot remove task ${taskID} from ${this.dir}`, { cause: e });
    }
  }

  async close(): Promise<void> { /* nothing held open */ }

  /** The rename (or unlink) is durable only once the folder is synced. */
  private async syncDir(): Promise<void> {
    const fh = await open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
