/* The per-worker message spool (spool.h).
 *
 * Small messages go to one growable buffer that is reused for every message,
 * so a worker stops allocating once it has seen its largest small message.
 * Large ones go to an unlinked temporary file (nothing to clean up after a
 * crash) that is mapped read-only for the sink, so a 30 MB message never sits
 * in the heap. The SHA-256 is updated as bytes arrive: the message is read
 * exactly once. */
#define _GNU_SOURCE /* O_TMPFILE */
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util.h"

/* 2 MiB: the buffer stays at the largest message under it for the worker's
 * life, so it sets a worker's memory; above it, a temporary file costs one
 * more kernel copy, which measured the same wall time on 20,000 messages
 * (bench/PROFILE.md, fifth pass). */
#define SPOOL_DEFAULT_THRESHOLD (2u * 1024 * 1024)
/* Bytes gathered before one write() to the temporary file. */
#define SPOOL_FILE_CHUNK (256u * 1024)
/* The start of a message in the file kept in memory for its header: 64 KiB
 * holds the header block of all but pathological messages. */
#define SPOOL_HEAD_MAX (64u * 1024)

enum spool_phase { SPOOL_IDLE, SPOOL_WRITING, SPOOL_FINISHED };

struct gw_spool {
	char *tmpdir;
	size_t mem_threshold;
	EVP_MD_CTX *md;

	enum spool_phase phase;
	uint64_t expected;
	uint64_t received;
	bool in_file;

	/* Memory path: the whole message. File path: the chunk being gathered. */
	unsigned char *buf;
	size_t buf_len;
	size_t buf_cap;

	int fd;
	void *map;
	size_t map_len;

	/* File path: the message's first min(received, SPOOL_HEAD_MAX) bytes
	 * (gw_spool_message_id). */
	unsigned char *head;
};

static bool spool_fail(char **error, const char *fmt, ...) GW_PRINTF(2, 3);

static bool spool_fail(char **error, const char *fmt, ...)
{
	if (error) {
		va_list ap;
		va_start(ap, fmt);
		*error = gw_xvasprintf(fmt, ap);
		va_end(ap);
	}
	return false;
}

struct gw_spool *gw_spool_new(const char *tmpdir, size_t mem_threshold)
{
	struct gw_spool *spool = gw_xcalloc(1, sizeof(*spool));
	const char *env = getenv("TMPDIR");

	if (!tmpdir)
		tmpdir = env && *env ? env : "/tmp";
	spool->tmpdir = gw_xstrdup(tmpdir);
	spool->mem_threshold = mem_threshold ? mem_threshold : SPOOL_DEFAULT_THRESHOLD;
	spool->md = EVP_MD_CTX_new();
	if (!spool->md)
		abort(); /* only fails on out-of-memory, which godwit treats as fatal */
	spool->fd = -1;
	return spool;
}

/* Drop what the previous message left: its mapping and its temporary file. */
static void spool_release_file(struct gw_spool *spool)
{
	if (spool->map) {
		munmap(spool->map, spool->map_len);
		spool->map = NULL;
		spool->map_len = 0;
	}
	if (spool->fd >= 0) {
		close(spool->fd);
		spool->fd = -1;
	}
}

void gw_spool_free(struct gw_spool *spool)
{
	if (!spool)
		return;
	spool_release_file(spool);
	EVP_MD_CTX_free(spool->md);
	free(spool->buf);
	free(spool->head);
	free(spool->tmpdir);
	free(spool);
}

static void spool_reserve(struct gw_spool *spool, size_t cap)
{
	if (spool->buf_cap >= cap)
		return;
	spool->buf = gw_xrealloc(spool->buf, cap);
	spool->buf_cap = cap;
}

static int spool_open_unlinked(const char *dir)
{
#ifdef O_TMPFILE
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* EOPNOTSUPP/EISDIR/EINVAL: the file system or kernel lacks O_TMPFILE. */
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -1;
#endif
	char *path = gw_xasprintf("%s/godwit-spool-XXXXXX", dir);
	int fallback = mkostemp(path, O_CLOEXEC);
	if (fallback >= 0)
		unlink(path);
	free(path);
	return fallback;
}

bool gw_spool_begin(struct gw_spool *spool, uint64_t expected_size, char **error)
{
	spool_release_file(spool);
	spool->phase = SPOOL_IDLE;
	spool->expected = expected_size;
	spool->received = 0;
	spool->buf_len = 0;
	if (expected_size > SIZE_MAX)
		return spool_fail(error, "spool: message of %llu bytes cannot be addressed",
		                  (unsigned long long)expected_size);
	if (EVP_DigestInit_ex(spool->md, EVP_sha256(), NULL) != 1)
		return spool_fail(error, "spool: SHA-256 is not available");

	spool->in_file = expected_size > spool->mem_threshold;
	if (spool->in_file) {
		spool->fd = spool_open_unlinked(spool->tmpdir);
		if (spool->fd < 0)
			return spool_fail(error, "spool: cannot create a temporary file in %s: %s",
			                  spool->tmpdir, strerror(errno));
		spool_reserve(spool, SPOOL_FILE_CHUNK);
		if (!spool->head)
			spool->head = gw_xmalloc(SPOOL_HEAD_MAX);
	} else {
		spool_reserve(spool, expected_size ? (size_t)expected_size : 1);
	}
	spool->phase = SPOOL_WRITING;
	return true;
}

static bool spool_write_all(struct gw_spool *spool, const unsigned char *data, size_t len,
                            char **error)
{
	while (len > 0) {
		ssize_t n = write(spool->fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return spool_fail(error, "spool: writing the temporary file in %s: %s",
			                  spool->tmpdir, n < 0 ? strerror(errno) : "no progress");
		data += n;
		len -= (size_t)n;
	}
	return true;
}

static bool spool_drain_chunk(struct gw_spool *spool, char **error)
{
	if (!spool_write_all(spool, spool->buf, spool->buf_len, error))
		return false;
	spool->buf_len = 0;
	return true;
}

unsigned char *gw_spool_tail(struct gw_spool *spool, size_t *room)
{
	*room = 0;
	if (spool->phase != SPOOL_WRITING)
		return NULL;
	uint64_t left = spool->expected - spool->received;
	size_t free_bytes = spool->buf_cap - spool->buf_len;
	*room = left < free_bytes ? (size_t)left : free_bytes;
	return *room > 0 ? spool->buf + spool->buf_len : NULL;
}

/* File path: gather bytes into the chunk buffer, writing whenever it fills. */
static bool spool_write_file(struct gw_spool *spool, const unsigned char *data, size_t len,
                             char **error)
{
	uint64_t at = spool->received - len; /* where @p data starts in the message */
	if (at < SPOOL_HEAD_MAX)
		memcpy(spool->head + at, data,
		       len < SPOOL_HEAD_MAX - at ? len : SPOOL_HEAD_MAX - at);
	if (data == spool->buf + spool->buf_len) { /* received in place (gw_spool_tail) */
		spool->buf_len += len;
		return spool->buf_len < spool->buf_cap || spool_drain_chunk(spool, error);
	}
	while (len > 0) {
		size_t room = spool->buf_cap - spool->buf_len;
		size_t take = len < room ? len : room;
		memcpy(spool->buf + spool->buf_len, data, take);
		spool->buf_len += take;
		data += take;
		len -= take;
		if (spool->buf_len == spool->buf_cap && !spool_drain_chunk(spool, error))
			return false;
	}
	return true;
}

bool gw_spool_write(struct gw_spool *spool, const void *data, size_t len, char **error)
{
	if (spool->phase != SPOOL_WRITING)
		return spool_fail(error, "spool: write without begin");
	if (len > spool->expected - spool->received)
		return spool_fail(error,
		                  "spool: more bytes than announced (%llu announced, at least %llu "
		                  "received)",
		                  (unsigned long long)spool->expected,
		                  (unsigned long long)(spool->received + len));
	if (len == 0)
		return true;
	if (EVP_DigestUpdate(spool->md, data, len) != 1)
		return spool_fail(error, "spool: SHA-256 update failed");
	spool->received += len;
	if (spool->in_file)
		return spool_write_file(spool, data, len, error);
	if (data != spool->buf + spool->buf_len) /* else received in place (gw_spool_tail) */
		memcpy(spool->buf + spool->buf_len, data, len);
	spool->buf_len += len;
	return true;
}

static void spool_hex(const unsigned char *digest, unsigned len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[2 * len] = '\0';
}

static bool spool_map_file(struct gw_spool *spool, char **error)
{
	if (!spool_drain_chunk(spool, error))
		return false;
	spool->map = mmap(NULL, (size_t)spool->received, PROT_READ, MAP_SHARED, spool->fd, 0);
	if (spool->map == MAP_FAILED) {
		spool->map = NULL;
		return spool_fail(error, "spool: cannot map the temporary file: %s",
		                  strerror(errno));
	}
	spool->map_len = (size_t)spool->received;
	return true;
}

bool gw_spool_finish(struct gw_spool *spool, const unsigned char **data, size_t *len,
                     char sha256_hex[65], char **error)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0;

	if (spool->phase != SPOOL_WRITING)
		return spool_fail(error, "spool: finish without begin");
	spool->phase = SPOOL_IDLE;
	if (spool->received != spool->expected)
		return spool_fail(error, "spool: message has %llu bytes, %llu were announced",
		                  (unsigned long long)spool->received,
		                  (unsigned long long)spool->expected);
	if (EVP_DigestFinal_ex(spool->md, digest, &digest_len) != 1)
		return spool_fail(error, "spool: SHA-256 finalisation failed");
	if (spool->in_file && !spool_map_file(spool, error))
		return false;

	spool_hex(digest, digest_len, sha256_hex);
	*data = spool->in_file ? spool->map : spool->buf;
	*len = (size_t)spool->received;
	spool->phase = SPOOL_FINISHED;
	return true;
}

int gw_spool_file(const struct gw_spool *spool)
{
	return spool->phase == SPOOL_FINISHED && spool->in_file ? spool->fd : -1;
}

/* ---- Message-ID ---------------------------------------------------------- */

/* One header line: [start, end) without its line break; next = start of the next line. */
struct header_line {
	size_t start, end, next;
};

static struct header_line next_line(const unsigned char *data, size_t len, size_t pos)
{
	struct header_line line = {pos, pos, pos};
	const unsigned char *nl = memchr(data + pos, '\n', len - pos);
	size_t lf = nl ? (size_t)(nl - data) : len;

	line.end = lf;
	if (line.end > pos && data[line.end - 1] == '\r')
		line.end--;
	line.next = nl ? lf + 1 : len;
	return line;
}

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool line_is_field(const unsigned char *data, struct header_line line, const char *name)
{
	size_t n = strlen(name);
	if (line.end - line.start <= n || data[line.start + n] != ':')
		return false;
	return strncasecmp((const char *)data + line.start, name, n) == 0;
}

/* The field body with its line breaks removed (RFC 5322 unfolding: the
 * whitespace that starts a continuation line stays), then trimmed. */
static char *field_value(const unsigned char *data, size_t len, struct header_line first,
                         size_t name_len, size_t *pos)
{
	struct gw_buf value = {0};

	gw_buf_append(&value, data + first.start + name_len + 1,
	              first.end - first.start - name_len - 1);
	while (*pos < len && is_wsp(data[*pos])) {
		struct header_line cont = next_line(data, len, *pos);
		gw_buf_append(&value, data + cont.start, cont.end - cont.start);
		*pos = cont.next;
	}
	size_t start = 0, end = value.len;
	while (start < end && is_wsp((unsigned char)value.data[start]))
		start++;
	while (end > start && is_wsp((unsigned char)value.data[end - 1]))
		end--;
	char *out = end > start ? gw_xstrndup(value.data + start, end - start) : NULL;
	gw_buf_free(&value);
	return out;
}

char *gw_message_id_of(const unsigned char *data, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		struct header_line line = next_line(data, len, pos);
		if (line.end == line.start)
			return NULL; /* the empty line: the header block ended */
		pos = line.next;
		if (!line_is_field(data, line, "Message-ID"))
			continue;

		char *value = field_value(data, len, line, strlen("Message-ID"), &pos);
		if (value)
			return value;
	}
	return NULL;
}

/* Whether @p data holds an empty line, i.e. the end of the header block. */
static bool header_ends_within(const unsigned char *data, size_t len)
{
	for (size_t pos = 0; pos < len;) {
		struct header_line line = next_line(data, len, pos);
		if (line.next == len && (len == 0 || data[len - 1] != '\n'))
			return false; /* a line cut off by the end of @p data */
		if (line.end == line.start)
			return true;
		pos = line.next;
	}
	return false;
}

char *gw_spool_message_id(const struct gw_spool *spool)
{
	if (spool->phase != SPOOL_FINISHED)
		return NULL;
	if (!spool->in_file)
		return gw_message_id_of(spool->buf, (size_t)spool->received);
	size_t head = spool->received < SPOOL_HEAD_MAX ? (size_t)spool->received : SPOOL_HEAD_MAX;
	if (header_ends_within(spool->head, head))
		return gw_message_id_of(spool->head, head);
	return gw_message_id_of(spool->map, spool->map_len);
}
