// @ts-check
/**
 * Reconnect delays: exponential backoff with "equal jitter". Half of each delay is fixed and
 * half is random, so a crowd of clients that lost the server at the same moment spreads out
 * without any client retrying immediately in a tight loop.
 * @module backoff
 */

/**
 * @typedef {object} BackoffOptions
 * @property {number} [initialDelayMs=500] delay before the first retry (before jitter)
 * @property {number} [maxDelayMs=10000] cap on any delay
 * @property {number} [factor=2] growth per attempt
 */

/** @type {Required<BackoffOptions>} */
export const DEFAULT_BACKOFF = Object.freeze({ initialDelayMs: 500, maxDelayMs: 10000, factor: 2 });

/**
 * The delay before retry number `attempt` (0 for the first retry).
 * The result lies in [d/2, d] where d = min(maxDelayMs, initialDelayMs * factor^attempt).
 * @param {number} attempt
 * @param {BackoffOptions} [options]
 * @param {() => number} [random] a source of numbers in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { initialDelayMs, maxDelayMs, factor } = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
