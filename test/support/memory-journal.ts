// A journal held in memory, for tests that run a job against the in-memory registry: every save is kept.
import type { JournalEntry, JournalStore } from '../../lambda/core/journal.ts';

/** A journal in memory, with every save kept; `failSave` makes the n-th save (1-based) throw. */
export function memoryJournal(
  failSave?: number,
): JournalStore & { saves: JournalEntry[][]; current: JournalEntry[] } {
  const j = {
    where: 'memory',
    saves: [] as JournalEntry[][],
    current: [] as JournalEntry[],
    load: () => Promise.resolve(j.current),
    save: (entries: readonly JournalEntry[]) => {
      if (failSave !== undefined && j.saves.length + 1 === failSave) {
        j.saves.push([]);
        return Promise.reject(new Error('disk full'));
      }
      j.current = [...entries];
      j.saves.push(j.current);
      return Promise.resolve();
    },
  };
  return j;
}
