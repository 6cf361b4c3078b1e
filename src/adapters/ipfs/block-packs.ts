/**
 * The embedded store's blocks, packed: each add appends its new blocks to a pack file of its own
 * (`<folder>/<id>.pack`), and a SQLite index (`<folder>/index.sqlite`) says where each block is,
 * by multihash. A block of a 512 MiB add costs one positional write and one index row; as one
 * file per block it cost a new inode, a temporary file, a rename and five round trips to the
 * thread pool, which made file creation the largest cost of an add after hashing
 * (bench/ipfs-add.ts).
 *
 * The index is SQLite in WAL mode, as the run store is, so several processes on one DATA_DIR (the
 * app, a `task-mgmt add` or `run`) see each other's blocks. A block's row is written only once its
 * bytes are, so a reader never finds a row before its bytes. Without fsync, as blocks always were
 * here: a crash can lose blocks written just before it.
 *
 * Deleting a block deletes its row; a pack with no rows left is deleted, and a pack whose live
 * blocks take less than half of it is rewritten with only those (a block shared with a later add
 * lives in the pack of the add that wrote it first). Packs still being written are left alone.
 */
import { mkdirSync } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';

/** A pack that has not been sealed for this long belongs to an add that died: it may be reclaimed. */
const ABANDONED_AFTER_MS = 24 * 60 * 60 * 1000;

interface Location {
  pack: number;
  offset: number;
  length: number;
}

export class BlockPacks {
  private database: SQLite.Database | undefined;
  /** Rows of blocks just written, indexed together in one transaction (a commit each cost 80 µs). */
  private rows: { multihash: Buffer; pack: number; offset: number; length: number }[] = [];
  private indexed: Promise<void> | undefined;
  private statements:
    | {
        find: SQLite.Statement<[Buffer], Location>;
        insert: SQLite.Statement<[Buffer, number, number, number]>;
        move: SQLite.Statement<[number, number, Buffer, number]>;
        remove: SQLite.Statement<[Buffer], Location>;
        newPack: SQLite.Statement<[number], { id: number }>;
        seal: SQLite.Statement<[number]>;
        pack: SQLite.Statement<[number], { sealed: number; createdAt: number }>;
        live: SQLite.Statement<[number], { count: number; bytes: number | null }>;
        blocksOf: SQLite.Statement<[number], Location & { multihash: Buffer }>;
        forgetPack: SQLite.Statement<[number]>;
      }
    | undefined;

  constructor(readonly folder: string) {}

  /** Opens (creating if needed) the folder and its index. */
  open(): void {
    if (this.database) return;
    mkdirSync(this.folder, { recursive: true });
    const database = new SQLite(join(this.folder, 'index.sqlite'));
    try {
      // WAL lets other processes read while one writes; busy_timeout makes writers wait their turn.
      database.pragma('journal_mode = WAL');
      database.pragma('busy_timeout = 5000');
      database.pragma('synchronous = NORMAL');
      database.exec(`
        CREATE TABLE IF NOT EXISTS packs (id INTEGER PRIMARY KEY, sealed INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS blocks (
          multihash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS blocks_by_pack ON blocks (pack);`);
      this.statements = {
        find: database.prepare('SELECT pack, offset, length FROM blocks WHERE multihash = ?'),
        insert: database.prepare('INSERT OR IGNORE INTO blocks (multihash, pack, offset, length) VALUES (?, ?, ?, ?)'),
        move: database.prepare('UPDATE blocks SET pack = ?, offset = ? WHERE multihash = ? AND pack = ?'),
        remove: database.prepare('DELETE FROM blocks WHERE multihash = ? RETURNING pack, offset, length'),
        newPack: database.prepare('INSERT INTO packs (created_at) VALUES (?) RETURNING id'),
        seal: database.prepare('UPDATE packs SET sealed = 1 WHERE id = ?'),
        pack: database.prepare('SELECT sealed, created_at AS createdAt FROM packs WHERE id = ?'),
        live: database.prepare('SELECT COUNT(*) AS count, SUM(length) AS bytes FROM blocks WHERE pack = ?'),
        blocksOf: database.prepare('SELECT multihash, pack, offset, length FROM blocks WHERE pack = ? ORDER BY offset'),
        forgetPack: database.prepare('DELETE FROM packs WHERE id = ?'),
      };
      this.database = database;
    } catch (error) {
      database.close();
      throw error;
    }
  }

  close(): void {
    // Blocks written but not yet indexed are indexed now: their bytes are in the packs.
    if (this.database) this.indexRows();
    this.database?.close();
    this.database = undefined;
    this.statements = undefined;
  }

  has(multihash: Uint8Array): boolean {
    return this.sql().find.get(blob(multihash)) !== undefined;
  }

  /** The block's bytes, or null when no pack holds it. */
  async get(multihash: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | null> {
    // A pack can be rewritten between the lookup and the read (reclaim): then look again.
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      const location = this.sql().find.get(blob(multihash));
      if (location === undefined) return null;
      try {
        return await this.read(location);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw error;
      }
    }
  }

  /** A pack for one add's new blocks, created when its first block comes. */
  writer(): PackWriter {
    return new PackWriter(this);
  }

  /**
   * Deletes these blocks' rows (missing ones are ignored), then reclaims the space of the packs
   * they were in. How many blocks it deleted.
   */
  async delete(multihashes: Iterable<Uint8Array>, options: { signal?: AbortSignal } = {}): Promise<number> {
    const sql = this.sql();
    const touched = new Set<number>();
    let deleted = 0;
    for (const multihash of multihashes) {
      const row = sql.remove.get(blob(multihash));
      if (row === undefined) continue;
      touched.add(row.pack);
      deleted += 1;
    }
    for (const pack of touched) {
      options.signal?.throwIfAborted();
      await this.reclaim(pack);
    }
    return deleted;
  }

  /** @internal PackWriter's side of the index. */
  startPack(): number {
    return this.sql().newPack.get(Date.now())!.id;
  }

  /**
   * @internal Indexes a block whose bytes are written, together with the others written by the
   * time the event loop turns; resolves once its row is committed.
   */
  record(multihash: Uint8Array, pack: number, offset: number, length: number): Promise<void> {
    this.rows.push({ multihash: blob(multihash), pack, offset, length });
    this.indexed ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.indexed = undefined;
        try {
          this.indexRows();
          resolve();
        } catch (error) {
          reject(error as Error);
        }
      });
    });
    return this.indexed;
  }

  private indexRows(): void {
    if (this.rows.length === 0) return;
    const rows = this.rows;
    this.rows = [];
    const { insert } = this.sql();
    this.database!.transaction(() => {
      for (const row of rows) insert.run(row.multihash, row.pack, row.offset, row.length);
    })();
  }

  /** @internal A sealed pack that ended up holding no block (all were written by others first) goes at once. */
  async seal(pack: number): Promise<void> {
    this.sql().seal.run(pack);
    await this.reclaim(pack);
  }

  packFile(pack: number): string {
    return join(this.folder, `${pack}.pack`);
  }

  private sql(): NonNullable<BlockPacks['statements']> {
    if (this.statements === undefined) throw new Error(`the block index in ${this.folder} is closed`);
    return this.statements;
  }

  private async read(location: Location): Promise<Uint8Array> {
    const handle = await open(this.packFile(location.pack), 'r');
    try {
      return await readExactly(handle, location.offset, location.length);
    } finally {
      await handle.close();
    }
  }

  /** Deletes a pack nothing is in any more, or rewrites one that is mostly dead space. */
  private async reclaim(pack: number): Promise<void> {
    const sql = this.sql();
    const info = sql.pack.get(pack);
    if (info === undefined) return;
    if (info.sealed === 0 && Date.now() - info.createdAt < ABANDONED_AFTER_MS) return;
    const live = sql.live.get(pack)!;
    const file = this.packFile(pack);
    if (live.count === 0) {
      sql.forgetPack.run(pack);
      await unlink(file).catch(ignoreMissing);
      return;
    }
    const size = await stat(file).then(
      (stats) => stats.size,
      () => 0,
    );
    if ((live.bytes ?? 0) * 2 >= size) return;
    const moved = new PackWriter(this);
    const source = await open(file, 'r');
    try {
      for (const block of sql.blocksOf.all(pack)) {
        const bytes = await readExactly(source, block.offset, block.length);
        const offset = await moved.append(bytes);
        sql.move.run(moved.pack!, offset, block.multihash, pack);
      }
    } finally {
      await source.close();
      await moved.close();
    }
    if (moved.pack !== undefined) sql.seal.run(moved.pack);
    sql.forgetPack.run(pack);
    await unlink(file).catch(ignoreMissing);
  }
}

/**
 * Appends blocks to one new pack. Writes may overlap: each takes its place in the pack before it
 * starts, and its index row is written once its bytes are.
 */
export class PackWriter {
  pack: number | undefined;
  private handle: Promise<FileHandle> | undefined;
  private size = 0;
  private readonly writing = new Set<Promise<unknown>>();

  constructor(private readonly packs: BlockPacks) {}

  /** Writes the block unless the index already has it; resolves once it is indexed. */
  async put(multihash: Uint8Array, bytes: Uint8Array): Promise<void> {
    if (this.packs.has(multihash)) return;
    const put = (async () => {
      const offset = await this.append(bytes);
      await this.packs.record(multihash, this.pack!, offset, bytes.byteLength);
    })();
    this.writing.add(put);
    try {
      await put;
    } finally {
      this.writing.delete(put);
    }
  }

  /** @internal Writes the bytes at the end of the pack, without indexing them; where they start. */
  async append(bytes: Uint8Array): Promise<number> {
    if (this.handle === undefined) {
      this.pack = this.packs.startPack();
      this.handle = open(this.packs.packFile(this.pack), 'wx');
    }
    const offset = this.size;
    this.size += bytes.byteLength;
    await writeAt(this.handle, bytes, offset);
    return offset;
  }

  /** Closes the pack once the add is over, whether it succeeded or not. */
  async seal(): Promise<void> {
    await this.close();
    if (this.pack !== undefined) await this.packs.seal(this.pack);
  }

  /** @internal Waits for the blocks being written and indexed, then closes the file. */
  async close(): Promise<void> {
    await Promise.allSettled(this.writing);
    const handle = this.handle;
    this.handle = undefined;
    if (handle !== undefined) await (await handle.catch(() => undefined))?.close();
  }
}

async function writeAt(opening: Promise<FileHandle>, bytes: Uint8Array, offset: number): Promise<void> {
  const handle = await opening;
  for (let written = 0; written < bytes.byteLength; ) {
    written += (await handle.write(bytes, written, bytes.byteLength - written, offset + written)).bytesWritten;
  }
}

/** better-sqlite3 binds Buffers as BLOBs, not other Uint8Arrays: the same bytes, not copied. */
function blob(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function readExactly(handle: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const bytes = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled);
    if (bytesRead === 0) throw new Error(`a block pack ends before the block it should hold (${length} bytes at ${offset})`);
    filled += bytesRead;
  }
  return bytes;
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
