/* Modified UTF-7 folder names (RFC 3501 5.1.3): both directions and the
 * inputs the decoder must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap_utf7.h"

struct pair {
	const char *utf8;
	const char *wire;
};

/* Known encodings: RFC 3501's example, '&', astral planes, mixed runs. */
static const struct pair pairs[] = {
        {"INBOX", "INBOX"},
        {"", ""},
        {"a&b", "a&-b"},
        {"&", "&-"},
        {"&&", "&-&-"},
        {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
        {"Entwürfe", "Entw&APw-rfe"},
        {"Gelöschte Elemente", "Gel&APY-schte Elemente"},
        {"Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"},
        {"Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"},
        {"😀", "&2D3eAA-"},
        {"a😀b€", "a&2D3eAA-b&IKw-"},
        {"tab\there", "tab&AAk-here"},
        {"Archives/2019 & more", "Archives/2019 &- more"},
        {"ü&ü", "&APw-&-&APw-"},
};

static void test_encode_known(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *error = NULL;
		char *wire = gw_imap_utf7_encode(pairs[i].utf8, &error);
		assert_non_null(wire);
		assert_string_equal(wire, pairs[i].wire);
		free(wire);
	}
}

static void test_decode_known(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		const char *error = NULL;
		char *utf8 = gw_imap_utf7_decode(pairs[i].wire, strlen(pairs[i].wire), &error);
		assert_non_null(utf8);
		assert_string_equal(utf8, pairs[i].utf8);
		free(utf8);
	}
}

/* Every BMP code point that is not printable ASCII or a surrogate, and a
 * sample of astral ones, survives encode -> decode. */
static void test_round_trip_all(void **state)
{
	(void)state;
	size_t checked = 0;
	for (uint32_t cp = 1; cp <= 0x10ffff; cp += (cp < 0x10000 ? 1 : 97)) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		unsigned char s[8] = {'x'};
		size_t n = 1;
		if (cp < 0x80) {
			s[n++] = (unsigned char)cp;
		} else if (cp < 0x800) {
			s[n++] = (unsigned char)(0xc0 | (cp >> 6));
			s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			s[n++] = (unsigned char)(0xe0 | (cp >> 12));
			s[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
		} else {
			s[n++] = (unsigned char)(0xf0 | (cp >> 18));
			s[n++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
			s[n++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			s[n++] = (unsigned char)(0x80 | (cp & 0x3f));
		}
		s[n++] = 'y';
		s[n] = '\0';
		const char *error = NULL;
		char *wire = gw_imap_utf7_encode((const char *)s, &error);
		assert_non_null(wire);
		for (const char *c = wire; *c; c++)
			assert_true(*c >= 0x20 && *c <= 0x7e);
		char *back = gw_imap_utf7_decode(wire, strlen(wire), &error);
		if (!back)
			fail_msg("U+%04X: %s -> %s", cp, wire, error);
		assert_string_equal(back, (const char *)s);
		free(wire);
		free(back);
		checked++;
	}
	assert_true(checked > 60000);
}

struct bad {
	const char *wire;
	const char *error;
};

static void test_decode_rejects(void **state)
{
	(void)state;
	static const struct bad bad[] = {
	        {"&", "unterminated base64 run"},
	        {"a&APw", "unterminated base64 run"},
	        {"&AGE-", "printable ASCII character encoded in base64"},    /* 'a' */
	        {"&ACY-", "printable ASCII character encoded in base64"},    /* '&' */
	        {"&APx-", "non-zero or excess padding bits in base64 run"},  /* pad bits */
	        {"&APwA-", "non-zero or excess padding bits in base64 run"}, /* extra char */
	        {"&2D0-", "high surrogate without its low surrogate"},       /* D83D alone */
	        {"&3gA-", "low surrogate without a high surrogate"},         /* DE00 alone */
	        {"&2D3YPQ-", "high surrogate without its low surrogate"},    /* D83D D83D */
	        {"&AP/-", "invalid character in base64 run"},                /* '/' */
	        {"&AP=-", "invalid character in base64 run"},
	        {"&APw-&APw-", "two adjacent base64 runs"},
	        {"caf\xc3\xa9", "8-bit byte in modified UTF-7 name"},
	        {"tab\there", "control character in folder name"},
	        {"&AAA-", "NUL character in folder name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		char *utf8 = gw_imap_utf7_decode(bad[i].wire, strlen(bad[i].wire), &error);
		if (utf8)
			fail_msg("accepted \"%s\" as \"%s\"", bad[i].wire, utf8);
		assert_non_null(error);
		if (strcmp(error, bad[i].error) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", bad[i].wire, error,
			         bad[i].error);
	}
}

static void test_encode_rejects_bad_utf8(void **state)
{
	(void)state;
	static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf" /* overlong '/' */,
	                                  "\xed\xa0\x80" /* surrogate */,
	                                  "\xf4\x90\x80\x80" /* > U+10FFFF */};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		assert_null(gw_imap_utf7_encode(bad[i], &error));
		assert_string_equal(error, "folder name is not valid UTF-8");
		assert_false(gw_utf8_valid(bad[i], strlen(bad[i])));
	}
	assert_true(gw_utf8_valid("Entwürfe 😀", strlen("Entwürfe 😀")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_encode_known),
	        cmocka_unit_test(test_decode_known),
	        cmocka_unit_test(test_round_trip_all),
	        cmocka_unit_test(test_decode_rejects),
	        cmocka_unit_test(test_encode_rejects_bad_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
