/**
 * Runs a driver's connect() so that the pool's create signal (createTimeoutMs, close()) can cut it short:
 * `abandon` tears the half-open connection down on abort and on failure. Drivers don't take a signal
 * themselves, so every backend needs this shape.
 */
export async function connectAbortable(
  signal: AbortSignal,
  connect: () => Promise<unknown>,
  abandon: () => void,
  onError: (error: unknown) => unknown = (error) => error,
): Promise<void> {
  if (signal.aborted) {
    abandon();
    throw signal.reason;
  }
  signal.addEventListener('abort', abandon, { once: true });
  try {
    await connect();
  } catch (error) {
    abandon();
    throw signal.aborted ? signal.reason : onError(error);
  } finally {
    signal.removeEventListener('abort', abandon);
  }
}
