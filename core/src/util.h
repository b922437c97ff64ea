/* Small helpers shared by every core module: allocation that cannot return
 * NULL (godwit treats out-of-memory as fatal, like git), growable strings,
 * and the value parsers the profile and option tables share. */
#ifndef GW_UTIL_H
#define GW_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <godwit/host.h>

/* Microseconds of CLOCK_MONOTONIC: for deadlines and durations. */
int64_t gw_monotonic_us(void);
/* CLOCK_REALTIME @p ms from now: the deadline pthread_cond_timedwait takes. */
struct timespec gw_deadline_in_ms(unsigned ms);

void *gw_xmalloc(size_t size);
void *gw_xcalloc(size_t count, size_t size);
void *gw_xrealloc(void *ptr, size_t size);
char *gw_xstrdup(const char *s);
char *gw_xstrndup(const char *s, size_t n);
char *gw_xasprintf(const char *fmt, ...) GW_PRINTF(1, 2);
char *gw_xvasprintf(const char *fmt, va_list ap) GW_PRINTF(1, 0);
/* The directory part of @p path: "." for a bare name, "/" for one in the root. */
char *gw_path_dir(const char *path);

/* Growable byte string, always NUL-terminated. */
struct gw_buf {
	char *data;
	size_t len;
	size_t cap;
};
void gw_buf_append(struct gw_buf *b, const void *data, size_t len);
void gw_buf_puts(struct gw_buf *b, const char *s);
void gw_buf_printf(struct gw_buf *b, const char *fmt, ...) GW_PRINTF(2, 3);
void gw_buf_reset(struct gw_buf *b);
void gw_buf_free(struct gw_buf *b);

/* "35MB", "512KiB", "1.5GB", "100" -> bytes. KB/MB/GB/TB are powers of 1000,
 * KiB/MiB/GiB/TiB of 1024 (case-insensitive; a bare "K"/"M"/"G"/"T" means
 * 1024-based like Dovecot; "B" or no unit: bytes). Blanks may separate number
 * and unit. Up to 9 decimals with a unit, rounded down to whole bytes.
 * Returns false on anything else, overflow included; *bytes is then untouched. */
bool gw_parse_size(const char *text, uint64_t *bytes);
/* "30s", "500ms", "5m", "1h", "2d", "45" (seconds) -> milliseconds. Whole
 * numbers, one unit, case-insensitive; false on overflow. */
bool gw_parse_duration(const char *text, uint64_t *ms);
/* true/false/yes/no/on/off (case-insensitive). */
bool gw_parse_bool(const char *text, bool *value);
/* Decimal integer, optional sign, whole string, no overflow. */
bool gw_parse_int(const char *text, int64_t *value);
/* "2015-01-01" (midnight UTC) or RFC 3339 "2015-01-01T10:00:00Z" / "...+02:00"
 * (fractions of a second dropped) -> seconds since the epoch. Checks the
 * calendar (2015-02-29 is refused). */
bool gw_parse_date(const char *text, int64_t *epoch);

/* Levenshtein distance, for "did you mean". */
size_t gw_edit_distance(const char *a, const char *b);
/* Closest of the NULL-terminated @p candidates if close enough to be a plausible typo, else NULL:
 * within max(2, strlen(word)/3) edits and fewer edits than the candidate has characters (the
 * first of equally close candidates wins). */
const char *gw_did_you_mean(const char *word, const char *const *candidates);

#endif
