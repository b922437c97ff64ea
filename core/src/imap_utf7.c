/* Modified UTF-7: printable ASCII stands for itself ("&" is written "&-"),
 * everything else is UTF-16 in a base64 variant (',' for '/', no padding)
 * between '&' and '-'. */
#include "imap_utf7.h"

#include <stdint.h>
#include <string.h>

#include "util.h"

static const char b64_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static bool is_printable_ascii(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Decode one UTF-8 sequence at @p s (at most @p len bytes) into @p cp;
 * returns its length, or 0 if it is malformed. */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	size_t need;
	uint32_t min;
	uint32_t value;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		need = 2, min = 0x80, value = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 3, min = 0x800, value = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		need = 4, min = 0x10000, value = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		value = (value << 6) | (s[i] & 0x3f);
	}
	if (value < min || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff))
		return 0;
	*cp = value;
	return need;
}

bool gw_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	uint32_t cp;

	while (i < len) {
		size_t n = utf8_next(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

static void utf8_append(struct gw_buf *out, uint32_t cp)
{
	unsigned char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (unsigned char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	gw_buf_append(out, b, n);
}

/* Base64 writer over UTF-16 units: bits wait in @c acc until six are ready. */
struct b64_writer {
	struct gw_buf *out;
	uint32_t acc;
	unsigned bits;
};

static void b64_put_unit(struct b64_writer *w, uint32_t unit)
{
	w->acc = (w->acc << 16) | unit;
	w->bits += 16;
	while (w->bits >= 6) {
		w->bits -= 6;
		gw_buf_append(w->out, &b64_alphabet[(w->acc >> w->bits) & 0x3f], 1);
	}
	w->acc &= (1u << w->bits) - 1;
}

static void b64_finish(struct b64_writer *w)
{
	if (w->bits > 0)
		gw_buf_append(w->out, &b64_alphabet[(w->acc << (6 - w->bits)) & 0x3f], 1);
	gw_buf_append(w->out, "-", 1);
	w->acc = 0;
	w->bits = 0;
}

char *gw_imap_utf7_encode(const char *utf8, const char **error)
{
	const unsigned char *p = (const unsigned char *)utf8;
	size_t len = strlen(utf8);
	struct gw_buf out = {0};
	struct b64_writer w = {.out = &out};
	bool shifted = false;
	size_t i = 0;

	gw_buf_append(&out, "", 0);
	while (i < len) {
		uint32_t cp;
		size_t n = utf8_next(p + i, len - i, &cp);
		if (n == 0) {
			gw_buf_free(&out);
			*error = "folder name is not valid UTF-8";
			return NULL;
		}
		i += n;
		if (is_printable_ascii(cp)) {
			if (shifted) {
				b64_finish(&w);
				shifted = false;
			}
			gw_buf_append(&out, cp == '&' ? "&-" : (const char *)&p[i - 1],
			              cp == '&' ? 2 : 1);
			continue;
		}
		if (!shifted) {
			gw_buf_append(&out, "&", 1);
			shifted = true;
		}
		if (cp >= 0x10000) {
			cp -= 0x10000;
			b64_put_unit(&w, 0xd800 | (cp >> 10));
			b64_put_unit(&w, 0xdc00 | (cp & 0x3ff));
		} else {
			b64_put_unit(&w, cp);
		}
	}
	if (shifted)
		b64_finish(&w);
	return out.data;
}

/* Decode one base64 run (between '&' and '-', exclusive) into @p out. */
static const char *decode_shift(const unsigned char *run, size_t len, struct gw_buf *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	uint32_t high = 0; /* pending high surrogate, 0 if none */

	if (len == 0)
		return "empty base64 run";
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(run[i]);
		if (v < 0)
			return "invalid character in base64 run";
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits < 16)
			continue;
		bits -= 16;
		uint32_t unit = (acc >> bits) & 0xffff;
		acc &= (1u << bits) - 1;
		if (unit >= 0xd800 && unit <= 0xdbff) {
			if (high)
				return "high surrogate without its low surrogate";
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			if (!high)
				return "low surrogate without a high surrogate";
			utf8_append(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else {
			if (high)
				return "high surrogate without its low surrogate";
			if (is_printable_ascii(unit))
				return "printable ASCII character encoded in base64";
			if (unit == 0)
				return "NUL character in folder name";
			utf8_append(out, unit);
		}
	}
	if (high)
		return "high surrogate without its low surrogate";
	if (bits >= 6 || acc != 0)
		return "non-zero or excess padding bits in base64 run";
	return NULL;
}

char *gw_imap_utf7_decode(const char *wire, size_t len, const char **error)
{
	const unsigned char *p = (const unsigned char *)wire;
	struct gw_buf out = {0};
	bool after_shift = false; /* the previous run was base64: another must not follow */
	size_t i = 0;

	gw_buf_append(&out, "", 0);
	while (i < len) {
		const char *why = NULL;
		if (p[i] != '&') {
			if (!is_printable_ascii(p[i])) {
				why = p[i] >= 0x80 ? "8-bit byte in modified UTF-7 name"
				                   : "control character in folder name";
				goto fail;
			}
			gw_buf_append(&out, &p[i], 1);
			i++;
			after_shift = false;
			continue;
		}
		const unsigned char *dash = memchr(p + i + 1, '-', len - i - 1);
		if (!dash) {
			why = "unterminated base64 run";
			goto fail;
		}
		size_t run = (size_t)(dash - (p + i + 1));
		if (run == 0) {
			gw_buf_append(&out, "&", 1);
			after_shift = false;
		} else {
			if (after_shift) {
				why = "two adjacent base64 runs";
				goto fail;
			}
			why = decode_shift(p + i + 1, run, &out);
			if (why)
				goto fail;
			after_shift = true;
		}
		i += run + 2;
		continue;
	fail:
		gw_buf_free(&out);
		*error = why;
		return NULL;
	}
	return out.data;
}
