// legate's version, reported by --version, /server_info and the startup log.
export const VERSION = '0.1.0';
