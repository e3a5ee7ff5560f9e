/**
 * The removal guard (DESIGN §2): a snapshot that would remove more than `threshold` of the
 * confirmed members, or any empty snapshot of a cohort OneSignal still carries, is held before
 * it touches the ledger. An upstream outage must never wipe a segment.
 */
export function guardDecision(input: {
  members: number;
  removes: number;
  confirmedMembers: number;
  threshold: number;
}): { hold: false } | { hold: true; reason: string } {
  const { members, removes, confirmedMembers, threshold } = input;
  if (confirmedMembers > 0 && members === 0) {
    return {
      hold: true,
      reason: `the snapshot is empty but OneSignal carries the tag for ${confirmedMembers} member(s); approve to remove them all, or reject`,
    };
  }
  if (confirmedMembers > 0 && removes > threshold * confirmedMembers) {
    const pct = Math.round((removes / confirmedMembers) * 1000) / 10;
    return {
      hold: true,
      reason: `the run would remove ${removes} of ${confirmedMembers} confirmed member(s) (${pct}%), more than the guard threshold of ${Math.round(threshold * 100)}%`,
    };
  }
  return { hold: false };
}
