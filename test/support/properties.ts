// How many cases a property test runs: a few hundred in the unit tier, more with `npm run test:properties`,
// which sets PROPERTY_RUNS_SCALE (e.g. 50 for a nightly run).
export function propertyRuns(unitTierRuns: number): number {
  const text = process.env.PROPERTY_RUNS_SCALE;
  if (text === undefined || text === '') return unitTierRuns;
  const scale = Number(text);
  if (!Number.isFinite(scale) || scale <= 0) {
    throw new Error(`PROPERTY_RUNS_SCALE="${text}" is not a positive number (e.g. 50)`);
  }
  return Math.max(1, Math.round(unitTierRuns * scale));
}
