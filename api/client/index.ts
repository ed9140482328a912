// The client package's entry: the one-connection client, the reconnecting
// client a long-running caller holds, their errors, events and transports.
export * from './client.js';
export { ReconnectingClient, type ConnectionPhase, type ConnectionState, type ReconnectingOptions } from './reconnecting.js';
export { backoffDelay, backoffSettings, DEFAULT_BACKOFF, NODE_TIMERS, type BackoffOptions, type Timers } from './backoff.js';
