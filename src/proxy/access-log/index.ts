// Access logging: config parsing (file/stdout/stderr loggers, filters) and the loggers that write lines.
// See config.ts (parse, fails with Result errors) and logger.ts (never throws on the request path).

export { parseAccessLog, parseLogFormat, FILE_ACCESS_LOG, STDOUT_ACCESS_LOG, STDERR_ACCESS_LOG } from './config.ts';
export type { AccessLogConfig, AccessLogSink } from './config.ts';
export { parseAccessLogFilter } from './filter.ts';
export type { AccessLogFilter } from './filter.ts';
export { createAccessLogger, reopenAccessLogs } from './logger.ts';
export type { AccessLogger } from './logger.ts';
