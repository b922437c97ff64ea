/* Allocation, growable strings and the value parsers shared by the profile
 * reader and the option binder. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Out-of-memory is fatal: callers never have to check, and there is no sane
 * way to continue a migration without memory. */
static void out_of_memory(size_t size)
{
	fprintf(stderr, "godwit: out of memory (allocating %zu bytes)\n", size);
	abort();
}

int64_t gw_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec gw_deadline_in_ms(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void *gw_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

void *gw_xcalloc(size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		out_of_memory(count * size);
	return p;
}

void *gw_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (!p)
		out_of_memory(size);
	return p;
}

char *gw_xstrdup(const char *s)
{
	return gw_xstrndup(s, strlen(s));
}

char *gw_xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = gw_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *gw_path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return gw_xstrdup(".");
	return gw_xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
}

char *gw_xvasprintf(const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int len = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (len < 0) {
		fprintf(stderr, "godwit: invalid format string '%s'\n", fmt);
		abort();
	}
	char *p = gw_xmalloc((size_t)len + 1);
	vsnprintf(p, (size_t)len + 1, fmt, ap);
	return p;
}

char *gw_xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = gw_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

/* ---- gw_buf ---- */

static void buf_reserve(struct gw_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = gw_xrealloc(b->data, cap);
	b->cap = cap;
}

void gw_buf_append(struct gw_buf *b, const void *data, size_t len)
{
	buf_reserve(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void gw_buf_puts(struct gw_buf *b, const char *s)
{
	gw_buf_append(b, s, strlen(s));
}

void gw_buf_printf(struct gw_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = gw_xvasprintf(fmt, ap);
	va_end(ap);
	gw_buf_puts(b, s);
	free(s);
}

void gw_buf_reset(struct gw_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void gw_buf_free(struct gw_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* ---- numbers ---- */

static bool mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a != 0 && b > UINT64_MAX / a)
		return false;
	*out = a * b;
	return true;
}

static bool add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	if (b > UINT64_MAX - a)
		return false;
	*out = a + b;
	return true;
}

/* Unsigned decimal digits at *p (at least one); advances *p. */
static bool parse_digits(const char **p, uint64_t *value, size_t *ndigits)
{
	uint64_t v = 0;
	size_t n = 0;
	while (isdigit((unsigned char)**p)) {
		if (!mul_u64(v, 10, &v) || !add_u64(v, (uint64_t)(**p - '0'), &v))
			return false;
		(*p)++;
		n++;
	}
	*value = v;
	if (ndigits)
		*ndigits = n;
	return n > 0;
}

struct unit {
	const char *name;
	uint64_t factor;
};

#define KIB 1024ull
#define KB  1000ull

static const struct unit size_units[] = {
        {"", 1},
        {"b", 1},
        {"k", KIB},
        {"kib", KIB},
        {"kb", KB},
        {"m", KIB *KIB},
        {"mib", KIB *KIB},
        {"mb", KB *KB},
        {"g", KIB *KIB *KIB},
        {"gib", KIB *KIB *KIB},
        {"gb", KB *KB *KB},
        {"t", KIB *KIB *KIB *KIB},
        {"tib", KIB *KIB *KIB *KIB},
        {"tb", KB *KB *KB *KB},
        {NULL, 0},
};

static const struct unit *find_unit(const struct unit *units, const char *name)
{
	for (const struct unit *u = units; u->name; u++)
		if (strcasecmp(u->name, name) == 0)
			return u;
	return NULL;
}

/* "35 MB": blanks may separate a number from its unit, but not end the text. */
static const char *skip_unit_blanks(const char *p)
{
	const char *q = p;
	while (*q == ' ')
		q++;
	return q != p && *q == '\0' ? p : q;
}

/* fraction / 10^ndigits * factor, rounded down, without overflow: split the
 * factor into q * 10^n + r so that every product stays below 2^64. */
static uint64_t scale_fraction(uint64_t fraction, size_t ndigits, uint64_t factor)
{
	uint64_t pow10 = 1;
	for (size_t i = 0; i < ndigits; i++)
		pow10 *= 10;
	uint64_t q = factor / pow10, r = factor % pow10;
	return fraction * q + fraction * r / pow10;
}

bool gw_parse_size(const char *text, uint64_t *bytes)
{
	const char *p = text;
	uint64_t whole, fraction = 0;
	size_t frac_digits = 0;
	if (!parse_digits(&p, &whole, NULL))
		return false;
	if (*p == '.') {
		p++;
		/* 9 digits keep scale_fraction exact; nobody writes sizes finer than that. */
		if (!parse_digits(&p, &fraction, &frac_digits) || frac_digits > 9)
			return false;
	}
	const struct unit *u = find_unit(size_units, skip_unit_blanks(p));
	if (!u)
		return false;
	if (frac_digits > 0 && u->factor == 1)
		return false; /* a fraction of a byte */
	uint64_t total;
	if (!mul_u64(whole, u->factor, &total) ||
	    !add_u64(total, scale_fraction(fraction, frac_digits, u->factor), &total))
		return false;
	*bytes = total;
	return true;
}

static const struct unit duration_units[] = {
        {"", 1000},       {"ms", 1},          {"s", 1000},
        {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000ull},
        {NULL, 0},
};

bool gw_parse_duration(const char *text, uint64_t *ms)
{
	const char *p = text;
	uint64_t n;
	if (!parse_digits(&p, &n, NULL))
		return false;
	const struct unit *u = find_unit(duration_units, skip_unit_blanks(p));
	if (!u || !mul_u64(n, u->factor, &n))
		return false;
	*ms = n;
	return true;
}

bool gw_parse_bool(const char *text, bool *value)
{
	static const char *const truthy[] = {"true", "yes", "on", NULL};
	static const char *const falsy[] = {"false", "no", "off", NULL};
	for (size_t i = 0; truthy[i]; i++) {
		if (strcasecmp(text, truthy[i]) == 0) {
			*value = true;
			return true;
		}
		if (strcasecmp(text, falsy[i]) == 0) {
			*value = false;
			return true;
		}
	}
	return false;
}

bool gw_parse_int(const char *text, int64_t *value)
{
	/* strtoll would accept leading blanks and hexadecimal-looking prefixes
	 * only partially; insist on [+-]digits and nothing else. */
	const char *p = text;
	if (*p == '+' || *p == '-')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(text, &end, 10);
	if (errno == ERANGE || *end != '\0')
		return false;
	*value = (int64_t)v;
	return true;
}

/* ---- dates ---- */

static bool is_leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return month == 2 && is_leap_year(year) ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to year-month-day (proleptic Gregorian). */
static int64_t days_since_epoch(int64_t year, int month, int day)
{
	int64_t days = 0;
	for (int64_t y = 1970; y < year; y++)
		days += is_leap_year(y) ? 366 : 365;
	for (int64_t y = year; y < 1970; y++)
		days -= is_leap_year(y) ? 366 : 365;
	for (int m = 1; m < month; m++)
		days += days_in_month(year, m);
	return days + day - 1;
}

/* Exactly @p n digits at *p; advances *p. */
static bool fixed_digits(const char **p, int n, int *value)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*value = v;
	return true;
}

static bool expect_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool parse_calendar_date(const char **p, int *year, int *month, int *day)
{
	if (!fixed_digits(p, 4, year) || !expect_char(p, '-') || !fixed_digits(p, 2, month) ||
	    !expect_char(p, '-') || !fixed_digits(p, 2, day))
		return false;
	return *month >= 1 && *month <= 12 && *day >= 1 && *day <= days_in_month(*year, *month);
}

/* "HH:MM:SS[.frac]" -> seconds of the day (fractions dropped). */
static bool parse_time_of_day(const char **p, int64_t *seconds)
{
	int h, m, s;
	if (!fixed_digits(p, 2, &h) || !expect_char(p, ':') || !fixed_digits(p, 2, &m) ||
	    !expect_char(p, ':') || !fixed_digits(p, 2, &s))
		return false;
	if (h > 23 || m > 59 || s > 60) /* 60: leap second */
		return false;
	if (**p == '.') {
		(*p)++;
		if (!isdigit((unsigned char)**p))
			return false;
		while (isdigit((unsigned char)**p))
			(*p)++;
	}
	*seconds = h * 3600 + m * 60 + s;
	return true;
}

/* "Z" or "+hh:mm"/"-hh:mm" -> offset east of UTC in seconds; must end the text. */
static bool parse_utc_offset(const char *p, int64_t *offset)
{
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		*offset = 0;
		return true;
	}
	if (*p != '+' && *p != '-')
		return false;
	int sign = *p == '-' ? -1 : 1;
	p++;
	int h, m;
	if (!fixed_digits(&p, 2, &h) || !expect_char(&p, ':') || !fixed_digits(&p, 2, &m) ||
	    *p != '\0' || h > 23 || m > 59)
		return false;
	*offset = sign * (h * 3600 + m * 60);
	return true;
}

bool gw_parse_date(const char *text, int64_t *epoch)
{
	const char *p = text;
	int year, month, day;
	if (!parse_calendar_date(&p, &year, &month, &day))
		return false;
	int64_t result = days_since_epoch(year, month, day) * 86400;
	if (*p != '\0') {
		/* RFC 3339 allows 't' and, per its note, a space as separator. */
		if (*p != 'T' && *p != 't' && *p != ' ')
			return false;
		p++;
		int64_t seconds, offset;
		if (!parse_time_of_day(&p, &seconds) || !parse_utc_offset(p, &offset))
			return false;
		result += seconds - offset;
	}
	*epoch = result;
	return true;
}

/* ---- did you mean ---- */

size_t gw_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *row = gw_xmalloc((lb + 1) * sizeof(*row));
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diagonal = row[0]; /* row[i-1][j-1] */
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t above = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diagonal + cost;
			if (above + 1 < best)
				best = above + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diagonal = above;
		}
	}
	size_t d = row[lb];
	free(row);
	return d;
}

const char *gw_did_you_mean(const char *word, const char *const *candidates)
{
	size_t len = strlen(word);
	size_t limit = len / 3 > 2 ? len / 3 : 2;
	const char *best = NULL;
	size_t best_distance = limit + 1;
	for (size_t i = 0; candidates[i]; i++) {
		size_t d = gw_edit_distance(word, candidates[i]);
		/* Replacing every character of a short key is not a typo. */
		if (d >= strlen(candidates[i]))
			continue;
		if (d < best_distance) {
			best = candidates[i];
			best_distance = d;
		}
	}
	return best;
}
