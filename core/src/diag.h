/* Diagnostics for configuration input: every problem found while reading a
 * profile or CSV, each with the place it was found, so the user sees all of
 * them at once ("users.csv:7:1: error: ..."). */
#ifndef GW_DIAG_H
#define GW_DIAG_H

#include <stddef.h>

#include <godwit/host.h>

enum gw_diag_severity { GW_DIAG_ERROR, GW_DIAG_WARNING };

struct gw_diag_entry {
	enum gw_diag_severity severity;
	char *file;      /* may be NULL */
	unsigned line;   /* 1-based; 0 = unknown */
	unsigned column; /* 1-based; 0 = unknown */
	char *message;   /* without location or severity */
};

struct gw_diag {
	struct gw_diag_entry *entries;
	size_t count;
	size_t cap;
	size_t errors;
};

void gw_diag_add(struct gw_diag *d, enum gw_diag_severity sev, const char *file, unsigned line,
                 unsigned column, const char *fmt, ...) GW_PRINTF(6, 7);
#define gw_diag_error(d, file, line, col, ...)                                                     \
	gw_diag_add((d), GW_DIAG_ERROR, (file), (line), (col), __VA_ARGS__)
#define gw_diag_warn(d, file, line, col, ...)                                                      \
	gw_diag_add((d), GW_DIAG_WARNING, (file), (line), (col), __VA_ARGS__)
/* "file:line:col: error: message" (parts that are unknown are left out). Caller frees. */
char *gw_diag_format(const struct gw_diag_entry *e);
/* Print every entry to stderr, one line each. */
void gw_diag_print(const struct gw_diag *d);
void gw_diag_free(struct gw_diag *d);

#endif
