/** A noun for a count: "tag" for 1, "tags" (or the plural given) otherwise. Every message that counts uses it. */
export const noun = (n: number, word: string, many = `${word}s`): string => (n === 1 ? word : many);

/** A count with its noun: "1 manifest", "3 manifests". */
export const plural = (n: number, word: string, many = `${word}s`): string => `${n} ${noun(n, word, many)}`;
