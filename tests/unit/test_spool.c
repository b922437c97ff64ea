/* The message spool: memory and file paths, SHA-256 while bytes arrive,
 * size checks, and Message-ID extraction. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "spool.h"
#include "util.h"

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char digest[32];
	unsigned n = 0;
	assert_int_equal(EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", digest[i]);
}

static int open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int dir_entry_count(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* Deterministic bytes including NUL, CR and LF. */
static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len ? len : 1);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

/* Feed @p data in @p chunk-sized pieces and finish; returns the spool's view. */
static void spool_through(struct gw_spool *sp, const unsigned char *data, size_t len, size_t chunk,
                          const unsigned char **out, size_t *out_len, char hex[65])
{
	char *err = NULL;
	assert_true(gw_spool_begin(sp, len, &err));
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		assert_true(gw_spool_write(sp, data + off, n, &err));
	}
	assert_true(gw_spool_finish(sp, out, out_len, hex, &err));
	assert_null(err);
}

static char tmpdir[] = "/tmp/gw-test-spool-XXXXXX";

static int make_tmpdir(void **state)
{
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int remove_tmpdir(void **state)
{
	rmdir(tmpdir);
	return 0;
}

static void test_memory_path(void **state)
{
	struct gw_spool *sp = gw_spool_new(tmpdir, 4096);
	unsigned char *msg = pattern(3000, 1);
	const unsigned char *data;
	size_t len;
	char hex[65], want[65];
	int fds = open_fd_count();

	spool_through(sp, msg, 3000, 7, &data, &len, hex);
	sha256_hex(msg, 3000, want);
	assert_int_equal(len, 3000);
	assert_memory_equal(data, msg, 3000);
	assert_string_equal(hex, want);
	assert_int_equal(open_fd_count(), fds); /* no temporary file */
	assert_int_equal(gw_spool_file(sp), -1);

	/* The buffer is reused: a smaller message lands at the same address. */
	const unsigned char *first = data;
	spool_through(sp, msg, 100, 100, &data, &len, hex);
	assert_ptr_equal(data, first);
	sha256_hex(msg, 100, want);
	assert_string_equal(hex, want);
	gw_spool_free(sp);
	free(msg);
}

static void test_file_path(void **state)
{
	const size_t size = 10u * 1000 * 1000 + 123;
	struct gw_spool *sp = gw_spool_new(tmpdir, 1024 * 1024);
	unsigned char *msg = pattern(size, 2);
	const unsigned char *data;
	size_t len;
	char hex[65], want[65];
	int fds = open_fd_count();

	spool_through(sp, msg, size, 65521, &data, &len, hex);
	sha256_hex(msg, size, want);
	assert_int_equal(len, size);
	assert_memory_equal(data, msg, size);
	assert_string_equal(hex, want);
	assert_int_equal(open_fd_count(), fds + 1);   /* the temporary file, mapped */
	assert_int_equal(dir_entry_count(tmpdir), 0); /* unlinked: nothing to clean up */
	/* The same bytes are offered as that file, from offset 0. */
	int fd = gw_spool_file(sp);
	assert_true(fd >= 0);
	unsigned char head[64], tail[64];
	assert_int_equal(pread(fd, head, sizeof(head), 0), (ssize_t)sizeof(head));
	assert_int_equal(pread(fd, tail, sizeof(tail), (off_t)(size - sizeof(tail))),
	                 (ssize_t)sizeof(tail));
	assert_memory_equal(head, msg, sizeof(head));
	assert_memory_equal(tail, msg + size - sizeof(tail), sizeof(tail));

	/* The next (small) message releases the file and its mapping. */
	spool_through(sp, msg, 10, 10, &data, &len, hex);
	assert_int_equal(open_fd_count(), fds);
	assert_int_equal(gw_spool_file(sp), -1);
	sha256_hex(msg, 10, want);
	assert_string_equal(hex, want);

	/* And a second big one works the same way. */
	spool_through(sp, msg + 5, 2 * 1024 * 1024, 4096, &data, &len, hex);
	sha256_hex(msg + 5, 2 * 1024 * 1024, want);
	assert_string_equal(hex, want);
	assert_memory_equal(data, msg + 5, 2 * 1024 * 1024);
	gw_spool_free(sp);
	assert_int_equal(open_fd_count(), fds);
	free(msg);
}

/* Feed @p data as a reader with a place to receive into would: up to @p take
 * bytes at a time straight into gw_spool_tail's room, every third piece (and
 * whatever the room cannot take) through an ordinary buffer instead. */
static void spool_in_place(struct gw_spool *sp, const unsigned char *data, size_t len, size_t take,
                           const unsigned char **out, size_t *out_len, char hex[65],
                           size_t *in_place)
{
	char *err = NULL;
	size_t room = 0;
	*in_place = 0;
	assert_null(gw_spool_tail(sp, &room)); /* no message begun */
	assert_int_equal(room, 0);
	assert_true(gw_spool_begin(sp, len, &err));
	for (size_t off = 0, piece = 0; off < len; piece++) {
		size_t n = len - off < take ? len - off : take;
		unsigned char *at = gw_spool_tail(sp, &room);
		assert_non_null(at);
		assert_true(room > 0 && room <= len - off);
		if (piece % 3 == 2 || room < n) {
			unsigned char copy[4096];
			n = n < sizeof(copy) ? n : sizeof(copy);
			memcpy(copy, data + off, n);
			assert_true(gw_spool_write(sp, copy, n, &err));
		} else {
			memcpy(at, data + off, n); /* what recv()/SSL_read() into it does */
			assert_true(gw_spool_write(sp, at, n, &err));
			*in_place += n;
		}
		off += n;
	}
	assert_null(gw_spool_tail(sp, &room)); /* every byte arrived */
	assert_int_equal(room, 0);
	assert_true(gw_spool_finish(sp, out, out_len, hex, &err));
	assert_null(err);
}

static void test_received_in_place(void **state)
{
	const size_t size = 3u * 1000 * 1000 + 7;
	struct gw_spool *sp = gw_spool_new(tmpdir, 1024 * 1024);
	unsigned char *msg = pattern(size, 3);
	const unsigned char *data;
	size_t len, in_place;
	char hex[65], want[65];

	/* In memory: the room is the rest of the message. */
	spool_in_place(sp, msg, 700000, 50000, &data, &len, hex, &in_place);
	sha256_hex(msg, 700000, want);
	assert_int_equal(len, 700000);
	assert_memory_equal(data, msg, 700000);
	assert_string_equal(hex, want);
	assert_true(in_place >= 400000);

	/* In the file: the room is what the chunk being gathered has left, and the
	 * head kept for the Message-ID is filled all the same. */
	static const char header[] = "Message-ID: <in-place@example.org>\r\n\r\n";
	memcpy(msg, header, sizeof(header) - 1);
	spool_in_place(sp, msg, size, 100000, &data, &len, hex, &in_place);
	sha256_hex(msg, size, want);
	assert_int_equal(len, size);
	assert_memory_equal(data, msg, size);
	assert_string_equal(hex, want);
	assert_true(in_place >= size / 2);
	char *id = gw_spool_message_id(sp);
	assert_string_equal(id, "<in-place@example.org>");
	free(id);
	gw_spool_free(sp);
	free(msg);
}

static void test_empty_message(void **state)
{
	struct gw_spool *sp = gw_spool_new(NULL, 0);
	const unsigned char *data = NULL;
	size_t len = 99;
	char hex[65];
	spool_through(sp, NULL, 0, 1, &data, &len, hex);
	assert_non_null(data);
	assert_int_equal(len, 0);
	assert_string_equal(hex,
	                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	gw_spool_free(sp);
}

static void test_size_mismatch(void **state)
{
	struct gw_spool *sp = gw_spool_new(tmpdir, 4);
	const unsigned char *data;
	size_t len;
	char hex[65], *err = NULL;

	/* Fewer bytes than announced, memory path. */
	assert_true(gw_spool_begin(sp, 3, &err));
	assert_true(gw_spool_write(sp, "ab", 2, &err));
	assert_false(gw_spool_finish(sp, &data, &len, hex, &err));
	assert_string_equal(err, "spool: message has 2 bytes, 3 were announced");
	free(err);
	err = NULL;

	/* More bytes than announced. */
	assert_true(gw_spool_begin(sp, 3, &err));
	assert_true(gw_spool_write(sp, "ab", 2, &err));
	assert_false(gw_spool_write(sp, "cd", 2, &err));
	assert_string_equal(err, "spool: more bytes than announced (3 announced, at least 4 "
	                         "received)");
	free(err);
	err = NULL;

	/* Fewer bytes, file path (threshold 4). */
	assert_true(gw_spool_begin(sp, 10, &err));
	assert_true(gw_spool_write(sp, "0123456", 7, &err));
	assert_false(gw_spool_finish(sp, &data, &len, hex, &err));
	assert_string_equal(err, "spool: message has 7 bytes, 10 were announced");
	free(err);
	err = NULL;

	/* finish twice is an error, not stale data. */
	assert_true(gw_spool_begin(sp, 1, &err));
	assert_true(gw_spool_write(sp, "x", 1, &err));
	assert_true(gw_spool_finish(sp, &data, &len, hex, &err));
	assert_false(gw_spool_finish(sp, &data, &len, hex, &err));
	assert_string_equal(err, "spool: finish without begin");
	free(err);
	gw_spool_free(sp);
}

static void test_bad_tmpdir(void **state)
{
	struct gw_spool *sp = gw_spool_new("/nonexistent/godwit", 4);
	char *err = NULL;
	const unsigned char *data;
	size_t len;
	char hex[65];

	assert_false(gw_spool_begin(sp, 100, &err));
	assert_string_equal(err, "spool: cannot create a temporary file in /nonexistent/godwit: "
	                         "No such file or directory");
	free(err);
	err = NULL;
	/* Small messages do not need the directory. */
	spool_through(sp, (const unsigned char *)"abc", 3, 3, &data, &len, hex);
	assert_memory_equal(data, "abc", 3);
	gw_spool_free(sp);
}

/* ---- Message-ID ---- */

/* @p got (freed here) is @p want, or NULL if @p want is. */
static void assert_id(char *got, const char *want)
{
	if (want) {
		assert_non_null(got);
		assert_string_equal(got, want);
	} else {
		assert_null(got);
	}
	free(got);
}

static void expect_id(const char *message, const char *want)
{
	assert_id(gw_message_id_of((const unsigned char *)message, strlen(message)), want);
}

static void test_message_id(void **state)
{
	expect_id("From: a@b\r\nMessage-ID: <one@example.org>\r\n\r\nbody\r\n",
	          "<one@example.org>");
	expect_id("message-id:<two@example.org>\n\nbody\n", "<two@example.org>");
	expect_id("MESSAGE-ID:   <three@example.org>   \r\nSubject: x\r\n\r\n",
	          "<three@example.org>");
	/* Folded: the line break goes, the whitespace of the continuation stays. */
	expect_id("Subject: x\r\nMessage-ID:\r\n <four@example.org>\r\nTo: y\r\n\r\n",
	          "<four@example.org>");
	expect_id("Message-ID: <five@\r\n\texample.org>\r\n\r\n", "<five@\texample.org>");
	expect_id("Message-ID:\n <six@example.org>\n \n\nbody", "<six@example.org>");
	/* No body at all, no final newline. */
	expect_id("Subject: s\nMessage-Id: <seven@example.org>", "<seven@example.org>");
	/* Missing. */
	expect_id("Subject: s\r\nFrom: a@b\r\n\r\nbody\r\n", NULL);
	/* Only in the body: not a header. */
	expect_id("Subject: s\r\n\r\nMessage-ID: <body@example.org>\r\n", NULL);
	expect_id("Subject: s\n\nMessage-ID: <body@example.org>\n", NULL);
	/* Similar names are other fields. */
	expect_id("X-Message-ID: <x@example.org>\r\nMessage-IDs: <y@example.org>\r\n\r\n", NULL);
	/* Empty value, then a real one. */
	expect_id("Message-ID:\r\nMessage-ID: <late@example.org>\r\n\r\n", "<late@example.org>");
	/* Empty input and a message that starts with the empty line. */
	expect_id("", NULL);
	expect_id("\r\nMessage-ID: <x@example.org>\r\n", NULL);
}

/* A message of @p header_pad bytes of an X-Pad field, then Message-ID (or none),
 * the empty line and @p body bytes, through a spool that files anything over
 * 1 KiB: the spool's Message-ID agrees with a parse of the whole message,
 * whether the header block ends in the first 64 KiB it keeps aside or not. */
static void expect_spool_id(size_t header_pad, const char *id, size_t body)
{
	struct gw_buf msg = {0};
	gw_buf_append(&msg, "X-Pad: ", 7);
	for (size_t i = 0; i < header_pad; i++)
		gw_buf_append(&msg, "p", 1);
	gw_buf_append(&msg, "\r\n", 2);
	if (id) {
		gw_buf_append(&msg, "Message-ID: ", 12);
		gw_buf_append(&msg, id, strlen(id));
		gw_buf_append(&msg, "\r\n", 2);
	}
	gw_buf_append(&msg, "\r\n", 2);
	for (size_t i = 0; i < body; i++)
		gw_buf_append(&msg, i % 80 == 79 ? "\n" : "b", 1);
	struct gw_spool *sp = gw_spool_new(tmpdir, 1024);
	const unsigned char *data;
	size_t len;
	char hex[65];
	spool_through(sp, (const unsigned char *)msg.data, msg.len, 4093, &data, &len, hex);
	assert_id(gw_spool_message_id(sp), id);
	gw_spool_free(sp);
	gw_buf_free(&msg);
}

static void test_spool_message_id(void **state)
{
	expect_spool_id(10, "<small@example.org>", 100);             /* in memory */
	expect_spool_id(10, "<filed@example.org>", 3 * 1024 * 1024); /* in the file, head kept */
	expect_spool_id(10, NULL, 3 * 1024 * 1024);
	/* A header block longer than the 64 KiB kept aside: read through the mapping. */
	expect_spool_id(100 * 1024, "<long@example.org>", 1024 * 1024);
	/* The end of the 64 KiB kept aside falls inside the Message-ID line, inside the
	 * empty line, or just after it (the header block is pad + 45 bytes). */
	for (size_t pad = 64 * 1024 - 80; pad <= 64 * 1024 - 40; pad++)
		expect_spool_id(pad, "<edge@example.org.x>", 2048);
	/* Not finished: nothing to read. */
	struct gw_spool *sp = gw_spool_new(tmpdir, 1024);
	assert_null(gw_spool_message_id(sp));
	gw_spool_free(sp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_memory_path),      cmocka_unit_test(test_file_path),
	        cmocka_unit_test(test_empty_message),    cmocka_unit_test(test_size_mismatch),
	        cmocka_unit_test(test_bad_tmpdir),       cmocka_unit_test(test_message_id),
	        cmocka_unit_test(test_spool_message_id), cmocka_unit_test(test_received_in_place),
	};
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
