// Reconnect delays: exponential with "equal jitter" (half fixed, half
// random), so a server restart is not met by every client at once, yet
// no client retries sooner than half its step.

export const BASE_MS = 1000;
export const MAX_MS = 60000;

// backoffDelay is the wait before reconnect attempt number attempt
// (0 for the first retry), in milliseconds.
export function backoffDelay(attempt, { base = BASE_MS, max = MAX_MS, random = Math.random } = {}) {
  const n = Math.max(0, Math.min(attempt, 30)); // 2**30 s is beyond any cap
  const step = Math.min(max, base * 2 ** n);
  return Math.round(step / 2 + random() * (step / 2));
}
