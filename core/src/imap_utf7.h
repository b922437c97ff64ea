/* Modified UTF-7 (RFC 3501 5.1.3), the wire form of IMAP folder names,
 * converted to and from UTF-8. Both directions are strict: a name that
 * does not decode to exactly one canonical form is rejected, so a folder
 * name survives decode -> encode unchanged. */
#ifndef GW_IMAP_UTF7_H
#define GW_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

/* Encode UTF-8 @p utf8 into modified UTF-7. Returns NULL (and sets *error to a
 * static text) if @p utf8 is not valid UTF-8. Caller frees the result. */
char *gw_imap_utf7_encode(const char *utf8, const char **error);

/* Decode modified UTF-7 @p wire (@p len bytes) into UTF-8. Returns NULL (and
 * sets *error to a static text) on invalid input: 8-bit bytes, a bad base64
 * run, non-zero padding bits, a lone or reversed surrogate, an encoded
 * printable ASCII character, an empty or unterminated shift. Caller frees. */
char *gw_imap_utf7_decode(const char *wire, size_t len, const char **error);

/* True if @p s (@p len bytes) is well-formed UTF-8 (no overlongs, no surrogates). */
bool gw_utf8_valid(const char *s, size_t len);

#endif
