import { hasMasterHooks } from '../config/hooks.js';
import { describeSource, type Resolution } from '../config/resolve.js';

/** What the master needs after the last worker was killed at graceful-timeout: reap, flush logs, exit. */
const STOP_MARGIN_S = 2;

/**
 * The warning to log when a stop (shutdown-delay, then the drain bounded by graceful-timeout)
 * would outlast the supervisor's patience (stop-budget), or undefined when it fits or the
 * budget is unknown. The supervisor would kill corral with requests still in flight.
 */
export function stopBudgetWarning(r: Resolution): string | undefined {
  const { shutdownDelay, gracefulTimeout, stopBudget, hookTimeout } = r.config;
  if (stopBudget === 0) return undefined;
  // The exit waits for the master's hooks still running (masterExiting, the last workerExited), at most hook-timeout.
  const hooks = hasMasterHooks(r.hooks) ? hookTimeout : 0;
  const needed = shutdownDelay + gracefulTimeout + hooks + STOP_MARGIN_S;
  if (needed <= stopBudget) return undefined;
  return (
    `shutdown-delay (${shutdownDelay} s) + graceful-timeout (${gracefulTimeout} s) + ${hooks ? `hook-timeout (${hookTimeout} s, the exit waits for hooks) + ` : ''}${STOP_MARGIN_S} s to exit ` +
    `do not fit the stop budget (${stopBudget} s, from ${describeSource(r.sources.stopBudget)}): ` +
    `the supervisor may kill corral before in-flight requests finish; give it at least ${Math.ceil(needed)} s ` +
    `(TimeoutStopSec=, terminationGracePeriodSeconds, docker stop --time) or lower graceful-timeout or shutdown-delay${hooks ? ' or hook-timeout' : ''}`
  );
}
