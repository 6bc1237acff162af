/** A count with its noun: "1 manifest", "3 manifests" (or the plural given). Every message that counts uses it. */
export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${n === 1 ? word : many}`;
