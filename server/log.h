/* log.h - one logging macro that checks the level before formatting. */
#ifndef GBX_LOG_H
#define GBX_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
extern int log_level;

/* Formats and writes one line to stderr with time and level. */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses "debug|info|warn|error"; returns the level or -1. */
int log_parse_level(const char *s);

#define LOG(level, ...)                                   \
  do {                                                    \
    if ((level) >= log_level) log_write(level, __VA_ARGS__); \
  } while (0)

#endif
