/*
 * limit: the fastest a mailbox can be drained from an IMAP server.
 *
 * Logs in (LOGIN), lists every folder, and per folder sends EXAMINE and
 * UID FETCH 1:* (BODY.PEEK[] FLAGS INTERNALDATE), reading the responses into
 * one large buffer and throwing the bytes away. No parsing beyond what is
 * needed to skip literals and find the tagged completion, no allocation per
 * message, no disk. With --connections N, N threads each log in and take
 * folders from a shared list, largest first (by STATUS MESSAGES).
 *
 * It is the yardstick of bench/run: whatever a migration tool does on top of
 * this (parsing, hashing, writing, state) is its own cost.
 *
 * With --store DIR it also writes every message the cheapest way a Maildir
 * can be written (DIR/tmp/<n>, then renamed into DIR/cur/; no fsync, no
 * flags, no folders): the floor of storing mail on this machine's disk,
 * which a reader that discards bytes does not pay. --sync also makes it
 * durable the cheapest way measured here: a thread syncs the file system
 * after every 32 MiB stored, so the write-back overlaps the reading, and one
 * last syncfs follows the last message, inside the timed run. The floor of a
 * copy that survives a power cut. --sync-batch N keeps each message in tmp/
 * until its batch of N is on the disk, as godwit's maildir sink does: per
 * batch, on a thread of its own while the next batch is read, syncfs, the
 * renames into cur/, an fsync of cur/ and tmp/ (a crash never leaves a
 * partial message in cur/): the floor of a copy that is durable batch by
 * batch. --sha256 also takes the SHA-256 of every message stored, on the
 * reading thread as it is written (OpenSSL's EVP, as godwit does for the
 * fingerprint its state keeps): the floor of a copy that can tell later what
 * it copied.
 *
 * With --append USER each connection also logs in to the same server as USER
 * and APPENDs every message it reads into a folder of the same name, the
 * fastest way an IMAP server can be fed: one MULTIAPPEND command per folder
 * (Dovecot stores a command in one transaction, which costs it about as much
 * as a message: 64 messages or 1 MiB a command, larger messages alone, took
 * Dovecot 25 % more CPU; bench/PROFILE.md, fifteenth pass) whose literals are
 * all non-synchronising, so nothing ever waits for a "+", and the tagged
 * answers read only at the end (about 80 bytes per command, which the loopback
 * socket buffers hold for far more than the bench's mailboxes). No flags, no
 * dates. Safe only for a server known to accept every message: when one is
 * refused inside a MULTIAPPEND, the rest of the command would be read as
 * commands (a real client must not do this). The floor of an IMAP -> IMAP
 * copy on this machine.
 *
 * usage: limit --host H --port P --user U [--tls] [--ca FILE] [--connections N]
 *        [--store DIR [--sync | --sync-batch N] [--sha256] | --append USER]
 *        passwords come from the environment: LIMIT_PASSWORD (and, with
 *        --append, LIMIT_APPEND_PASSWORD)
 * prints: messages=M bytes=B folders=F connections=N seconds=S
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Large reads: one SSL_read/recv per 256 KB keeps the per-call overhead out of
 * the measurement. */
#define READ_BUFFER_SIZE (256 * 1024)
#define MAX_FOLDERS      4096

struct options {
	const char *host;
	const char *port;
	const char *user;
	const char *password;
	const char *ca_file;
	const char *store;       /* NULL: discard */
	const char *append_user; /* NULL: no APPEND */
	const char *append_password;
	bool tls;
	bool sync;           /* --store: make it durable */
	bool sha256;         /* --store: hash every message */
	unsigned sync_batch; /* --store: rename into cur/ after each batch of N is synced; 0: off */
	int connections;
};

struct conn {
	int fd;
	SSL *ssl;
	unsigned char *buf;
	size_t len;
	size_t pos;
	char *line;
	size_t line_len;
	size_t line_cap;
	unsigned tag;
	unsigned stored;       /* --store: messages written by this connection */
	int id;                /* --store: the connection's number, in file names */
	EVP_MD_CTX *md;        /* --sha256: the stored message's digest, or NULL */
	const char *store_dir; /* --sync-batch: where the batches go, else NULL */
	unsigned store_batch;  /* --sync-batch: messages a batch */
	unsigned batch_first;  /* --sync-batch: the first message not yet in a flight */
	struct flight *flight; /* --sync-batch: the batch being made durable, or NULL */
	char error[512];
	/* --append, on the destination connection: the open MULTIAPPEND command. */
	bool group_open;
	unsigned unanswered; /* APPEND commands sent, answers not read yet */
};

struct folder {
	char *name;
	unsigned long messages;
};

struct work {
	const struct options *opt;
	SSL_CTX *ctx;
	struct folder *folders;
	size_t folder_count;
	size_t next_folder;
	pthread_mutex_t lock;
};

struct totals {
	unsigned long long messages;
	unsigned long long bytes;
	bool failed;
	char error[512];
};

static void fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p) {
		fputs("limit: out of memory\n", stderr);
		abort();
	}
	return p;
}

/* ---- transport --------------------------------------------------------------------------- */

static int tcp_connect(const struct options *opt, char *err, size_t err_size)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(opt->host, opt->port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_size, "%s:%s: %s", opt->host, opt->port, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			snprintf(err, err_size, "connect %s:%s: %s", opt->host, opt->port,
			         strerror(errno));
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static bool conn_open(struct conn *c, const struct options *opt, SSL_CTX *ctx)
{
	int id = c->id; /* names --store's files: kept */
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->buf = xmalloc(READ_BUFFER_SIZE);
	c->line_cap = 4096;
	c->line = xmalloc(c->line_cap);
	if (opt->sha256 && !(c->md = EVP_MD_CTX_new()))
		abort();
	c->fd = tcp_connect(opt, c->error, sizeof(c->error));
	if (c->fd < 0)
		return false;
	if (!opt->tls)
		return true;
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, opt->host);
	if (opt->ca_file)
		SSL_set1_host(c->ssl, opt->host);
	if (SSL_connect(c->ssl) != 1) {
		fail(c, "TLS handshake with %s:%s failed: %s", opt->host, opt->port,
		     ERR_reason_error_string(ERR_get_error()));
		return false;
	}
	return true;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	free(c->line);
	EVP_MD_CTX_free(c->md);
}

static bool conn_fill(struct conn *c)
{
	ssize_t n;
	if (c->ssl) {
		n = SSL_read(c->ssl, c->buf, READ_BUFFER_SIZE);
		if (n <= 0) {
			fail(c, "TLS read failed (%d)", SSL_get_error(c->ssl, (int)n));
			return false;
		}
	} else {
		do
			n = recv(c->fd, c->buf, READ_BUFFER_SIZE, 0);
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			fail(c, "read failed: %s", n == 0 ? "connection closed" : strerror(errno));
			return false;
		}
	}
	c->len = (size_t)n;
	c->pos = 0;
	return true;
}

static bool conn_write(struct conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = c->ssl ? SSL_write(c->ssl, data, (int)len) : send(c->fd, data, len, 0);
		if (n <= 0) {
			fail(c, "write failed");
			return false;
		}
		data += n;
		len -= (size_t)n;
	}
	return true;
}

/* One protocol line (up to and without CRLF) into c->line. */
static bool conn_read_line(struct conn *c)
{
	c->line_len = 0;
	for (;;) {
		if (c->pos == c->len && !conn_fill(c))
			return false;
		unsigned char *start = c->buf + c->pos;
		unsigned char *nl = memchr(start, '\n', c->len - c->pos);
		size_t take = nl ? (size_t)(nl - start) + 1 : c->len - c->pos;
		if (c->line_len + take + 1 > c->line_cap) {
			while (c->line_len + take + 1 > c->line_cap)
				c->line_cap *= 2;
			char *grown = realloc(c->line, c->line_cap);
			if (!grown)
				abort();
			c->line = grown;
		}
		memcpy(c->line + c->line_len, start, take);
		c->line_len += take;
		c->pos += take;
		if (nl)
			break;
	}
	while (c->line_len > 0 &&
	       (c->line[c->line_len - 1] == '\n' || c->line[c->line_len - 1] == '\r'))
		c->line_len--;
	c->line[c->line_len] = '\0';
	return true;
}

/* The size of a literal announced at the end of the current line ("{123}"), or -1. */
static long long trailing_literal(const struct conn *c)
{
	if (c->line_len < 3 || c->line[c->line_len - 1] != '}')
		return -1;
	size_t i = c->line_len - 1;
	while (i > 0 && c->line[i - 1] >= '0' && c->line[i - 1] <= '9')
		i--;
	if (i == 0 || c->line[i - 1] != '{' || i == c->line_len - 1)
		return -1;
	return strtoll(c->line + i, NULL, 10);
}

/* Consume a literal of @p n bytes, writing it to @p fd unless that is -1. */
static bool conn_skip(struct conn *c, unsigned long long n, int fd)
{
	while (n > 0) {
		if (c->pos == c->len && !conn_fill(c))
			return false;
		size_t avail = c->len - c->pos;
		size_t take = avail < n ? avail : (size_t)n;
		if (fd >= 0 && write(fd, c->buf + c->pos, take) != (ssize_t)take) {
			fail(c, "write failed: %s", strerror(errno));
			return false;
		}
		if (fd >= 0 && c->md && !EVP_DigestUpdate(c->md, c->buf + c->pos, take))
			abort();
		c->pos += take;
		n -= take;
	}
	return true;
}

/* ---- --sync ----------------------------------------------------------------------------- */

/* Early write-back, as godwit's maildir sink does it: without it the last
 * syncfs writes everything back after the reading is over. 10,000 messages /
 * 537 MB on two connections, medians of 3: TLS 2.47 s with one syncfs at the
 * end, 2.37 s with this; plain 1.24 s against 0.91 s. Starting each file's
 * write-back (sync_file_range) instead did not help: 2.66 s against 2.51 s. */
#define SYNC_EVERY (32ull * 1024 * 1024)

struct syncer {
	int fd; /* DIR, for syncfs */
	unsigned long long unsynced;
	bool quit;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
};

static struct syncer *syncer; /* NULL without --sync */

static void *syncer_main(void *arg)
{
	struct syncer *y = arg;
	pthread_mutex_lock(&y->lock);
	while (!y->quit) {
		if (y->unsynced < SYNC_EVERY) {
			pthread_cond_wait(&y->wake, &y->lock);
			continue;
		}
		y->unsynced = 0;
		pthread_mutex_unlock(&y->lock);
		(void)syncfs(y->fd); /* the last one, in syncer_finish, reports errors */
		pthread_mutex_lock(&y->lock);
	}
	pthread_mutex_unlock(&y->lock);
	return NULL;
}

static bool syncer_start(const char *dir)
{
	struct syncer *y = xmalloc(sizeof(*y));
	*y = (struct syncer){.fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
	if (y->fd < 0) {
		fprintf(stderr, "limit: cannot open %s: %s\n", dir, strerror(errno));
		free(y);
		return false;
	}
	pthread_mutex_init(&y->lock, NULL);
	pthread_cond_init(&y->wake, NULL);
	int rc = pthread_create(&y->thread, NULL, syncer_main, y);
	if (rc != 0) {
		fprintf(stderr, "limit: cannot start the sync thread: %s\n", strerror(rc));
		close(y->fd);
		free(y);
		return false;
	}
	syncer = y;
	return true;
}

static void syncer_note(unsigned long long bytes)
{
	if (!syncer)
		return;
	pthread_mutex_lock(&syncer->lock);
	syncer->unsynced += bytes;
	if (syncer->unsynced >= SYNC_EVERY)
		pthread_cond_signal(&syncer->wake);
	pthread_mutex_unlock(&syncer->lock);
}

/* Stops the thread, then the last syncfs: everything stored is on the disk. */
static bool syncer_finish(const char *dir)
{
	struct syncer *y = syncer;
	pthread_mutex_lock(&y->lock);
	y->quit = true;
	pthread_cond_signal(&y->wake);
	pthread_mutex_unlock(&y->lock);
	pthread_join(y->thread, NULL);
	bool ok = syncfs(y->fd) == 0;
	if (!ok)
		fprintf(stderr, "limit: cannot sync %s: %s\n", dir, strerror(errno));
	close(y->fd);
	pthread_cond_destroy(&y->wake);
	pthread_mutex_destroy(&y->lock);
	free(y);
	syncer = NULL;
	return ok;
}

/* ---- --sync-batch ----------------------------------------------------------------------- */

/* A batch on its way to cur/: messages first..end-1 of connection id. */
struct flight {
	const char *dir;
	int id;
	unsigned first, end;
	bool ok;
	char error[512];
	pthread_t thread;
};

static bool fsync_dir(const char *dir, const char *sub)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool ok = fd >= 0 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void *flight_main(void *arg)
{
	struct flight *f = arg;
	int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f->ok = fd >= 0 && syncfs(fd) == 0;
	if (fd >= 0)
		close(fd);
	for (unsigned k = f->first; f->ok && k < f->end; k++) {
		char tmp[4096], cur[4096];
		snprintf(tmp, sizeof(tmp), "%s/tmp/%d.%u", f->dir, f->id, k);
		snprintf(cur, sizeof(cur), "%s/cur/%d.%u", f->dir, f->id, k);
		f->ok = rename(tmp, cur) == 0;
	}
	f->ok = f->ok && fsync_dir(f->dir, "cur") && fsync_dir(f->dir, "tmp");
	if (!f->ok)
		snprintf(f->error, sizeof(f->error), "batch %u..%u: %s", f->first, f->end - 1,
		         strerror(errno));
	return NULL;
}

/* Waits for the batch in flight, if any. */
static bool flight_wait(struct conn *c)
{
	struct flight *f = c->flight;
	if (!f)
		return true;
	pthread_join(f->thread, NULL);
	bool ok = f->ok;
	if (!ok)
		fail(c, "%s", f->error);
	free(f);
	c->flight = NULL;
	return ok;
}

/* The messages stored since the last batch go on their way to cur/ (one
 * batch in flight at a time, as godwit's sink). */
static bool flight_start(struct conn *c)
{
	if (!flight_wait(c))
		return false;
	if (c->batch_first == c->stored)
		return true;
	struct flight *f = calloc(1, sizeof(*f));
	if (!f)
		abort();
	*f = (struct flight){
	        .dir = c->store_dir, .id = c->id, .first = c->batch_first, .end = c->stored};
	c->batch_first = c->stored;
	c->flight = f;
	if (pthread_create(&f->thread, NULL, flight_main, f) != 0)
		abort();
	return true;
}

/* --store: one message into DIR/tmp/, then renamed into DIR/cur/ (with
 * --sync-batch: when its batch is on the disk). */
static bool conn_store(struct conn *c, const char *dir, unsigned long long n)
{
	char tmp[4096], cur[4096];
	snprintf(tmp, sizeof(tmp), "%s/tmp/%d.%u", dir, c->id, c->stored);
	snprintf(cur, sizeof(cur), "%s/cur/%d.%u", dir, c->id, c->stored++);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fail(c, "cannot create %s: %s", tmp, strerror(errno));
		return false;
	}
	if (c->md && !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
		abort();
	bool ok = conn_skip(c, n, fd);
	unsigned char digest[EVP_MAX_MD_SIZE];
	if (ok && c->md && !EVP_DigestFinal_ex(c->md, digest, NULL))
		abort();
	close(fd);
	syncer_note(n);
	if (ok && c->store_dir) {
		if (c->stored - c->batch_first >= c->store_batch)
			return flight_start(c);
		return true;
	}
	if (ok && rename(tmp, cur) != 0) {
		fail(c, "cannot rename %s: %s", tmp, strerror(errno));
		return false;
	}
	return ok;
}

/* ---- --append --------------------------------------------------------------------------- */

static bool append_close_group(struct conn *d)
{
	if (!d->group_open)
		return true;
	d->group_open = false;
	return conn_write(d, "\r\n", 2);
}

/* One message of @p n bytes from @p c straight into @p d's MULTIAPPEND to
 * @p quoted_folder, the folder's command opened by its first message. */
static bool conn_append(struct conn *c, struct conn *d, const char *quoted_folder,
                        unsigned long long n)
{
	char head[1200];
	int len = d->group_open ? snprintf(head, sizeof(head), " {%llu+}\r\n", n)
	                        : snprintf(head, sizeof(head), "p%u APPEND %s {%llu+}\r\n",
	                                   ++d->tag, quoted_folder, n);
	if (!d->group_open) {
		d->group_open = true;
		d->unanswered++;
	}
	if (!conn_write(d, head, (size_t)len))
		return false;
	while (n > 0) {
		if (c->pos == c->len && !conn_fill(c))
			return false;
		size_t avail = c->len - c->pos;
		size_t take = avail < n ? avail : (size_t)n;
		if (!conn_write(d, (const char *)c->buf + c->pos, take))
			return false;
		c->pos += take;
		n -= take;
	}
	return true;
}

/* Read the answers of every APPEND sent; any NO or BAD fails. */
static bool append_answers(struct conn *d)
{
	while (d->unanswered > 0) {
		if (!conn_read_line(d))
			return false;
		if (d->line[0] == '*')
			continue;
		const char *space = strchr(d->line, ' ');
		if (d->line[0] != 'p' || !space || strncmp(space + 1, "OK", 2) != 0) {
			fail(d, "APPEND refused: %s", d->line);
			return false;
		}
		d->unanswered--;
	}
	return true;
}

/* ---- commands ---------------------------------------------------------------------------- */

struct response_sink {
	const char *store;     /* --store DIR for the literals, or NULL */
	struct conn *append;   /* --append: the destination connection, or NULL */
	const char *append_to; /* --append: the quoted folder name */
	bool may_fail;         /* a NO answer is not an error (CREATE of an existing folder) */
	bool can_append;       /* CAPABILITY: MULTIAPPEND and LITERAL+ */
	unsigned long long fetches;
	unsigned long long literal_bytes;
	struct folder *folders; /* LIST: collected here when not NULL */
	size_t *folder_count;
	unsigned long exists;
	unsigned long status_messages;
};

static char *unquote(const char *s, size_t *consumed)
{
	size_t n = strlen(s);
	char *out = xmalloc(n + 1);
	size_t o = 0, i = 1;
	for (; i < n && s[i] != '"'; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		out[o++] = s[i];
	}
	out[o] = '\0';
	*consumed = i + 1;
	return out;
}

/* "* LIST (attrs) delim name": keep selectable folders. */
static void collect_list(struct conn *c, struct response_sink *sink, char *literal_name)
{
	const char *attrs = strchr(c->line, '(');
	const char *close = attrs ? strchr(attrs, ')') : NULL;
	if (!close || *sink->folder_count >= MAX_FOLDERS) {
		free(literal_name);
		return;
	}
	bool noselect = strcasestr(attrs, "\\Noselect") && strcasestr(attrs, "\\Noselect") < close;
	noselect = noselect || (strcasestr(attrs, "\\NonExistent") &&
	                        strcasestr(attrs, "\\NonExistent") < close);
	char *name = literal_name;
	if (!name) {
		const char *p = close + 2; /* delimiter: "x" or NIL */
		p = (*p == '"') ? strchr(p + 1, '"') + 2 : p + 4;
		size_t used;
		name = (*p == '"') ? unquote(p, &used) : strdup(p);
	}
	if (noselect) {
		free(name);
		return;
	}
	sink->folders[(*sink->folder_count)++] = (struct folder){.name = name};
}

static bool is_untagged_fetch(const char *line)
{
	if (line[0] != '*' || line[1] != ' ')
		return false;
	const char *p = line + 2;
	while (*p >= '0' && *p <= '9')
		p++;
	return p > line + 2 && strncmp(p, " FETCH", 6) == 0;
}

static void note_untagged(const struct conn *c, struct response_sink *sink)
{
	const char *line = c->line;
	if (is_untagged_fetch(line)) {
		sink->fetches++;
		return;
	}
	const char *p = line + 2;
	unsigned long n = strtoul(p, (char **)&p, 10);
	if (p > line + 2 && strncmp(p, " EXISTS", 7) == 0)
		sink->exists = n;
	if (strncmp(line, "* CAPABILITY ", 13) == 0)
		sink->can_append = strstr(line, " MULTIAPPEND") && strstr(line, " LITERAL+");
	const char *m = strstr(line, "(MESSAGES ");
	if (strncmp(line, "* STATUS ", 9) == 0 && m)
		sink->status_messages = strtoul(m + 10, NULL, 10);
}

/* Send one command and read until its tagged completion; literals are skipped and counted. */
static bool command(struct conn *c, struct response_sink *sink, const char *fmt, ...)
{
	char cmd[2048];
	char tag[16];
	snprintf(tag, sizeof(tag), "a%u", ++c->tag);
	int n = snprintf(cmd, sizeof(cmd), "%s ", tag);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n - 2, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(cmd) - 2) {
		fail(c, "command too long");
		return false;
	}
	memcpy(cmd + n, "\r\n", 2);
	if (!conn_write(c, cmd, (size_t)n + 2))
		return false;
	size_t tag_len = strlen(tag);
	for (;;) {
		if (!conn_read_line(c))
			return false;
		if (strncmp(c->line, tag, tag_len) == 0 && c->line[tag_len] == ' ') {
			if (strncmp(c->line + tag_len + 1, "OK", 2) == 0 ||
			    (sink->may_fail && strncmp(c->line + tag_len + 1, "NO", 2) == 0))
				return true;
			fail(c, "%s", c->line);
			return false;
		}
		bool is_list = sink->folders && strncmp(c->line, "* LIST ", 7) == 0;
		if (c->line[0] == '*')
			note_untagged(c, sink);
		long long literal;
		while ((literal = trailing_literal(c)) >= 0) {
			if (is_list) {
				/* A folder name sent as a literal: keep it, it is small. */
				char *name = xmalloc((size_t)literal + 1);
				for (long long i = 0; i < literal; i++) {
					if (c->pos == c->len && !conn_fill(c))
						return false;
					name[i] = (char)c->buf[c->pos++];
				}
				name[literal] = '\0';
				collect_list(c, sink, name);
				is_list = false;
			} else {
				unsigned long long n = (unsigned long long)literal;
				sink->literal_bytes += n;
				bool ok = sink->store ? conn_store(c, sink->store, n)
				          : sink->append
				                  ? conn_append(c, sink->append, sink->append_to, n)
				                  : conn_skip(c, n, -1);
				if (!ok) {
					if (sink->append && sink->append->error[0])
						snprintf(c->error, sizeof(c->error), "%s",
						         sink->append->error);
					return false;
				}
			}
			if (!conn_read_line(c)) /* the rest of the response after the literal */
				return false;
		}
		if (is_list)
			collect_list(c, sink, NULL);
	}
}

static void quote_into(char *out, size_t size, const char *name)
{
	size_t o = 0;
	out[o++] = '"';
	for (const char *p = name; *p && o + 3 < size; p++) {
		if (*p == '"' || *p == '\\')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static bool login_as(struct conn *c, const char *name, const char *password)
{
	char user[600], pass[600];
	struct response_sink sink = {0};
	if (!conn_read_line(c)) /* greeting */
		return false;
	if (strncmp(c->line, "* OK", 4) != 0) {
		fail(c, "unexpected greeting: %s", c->line);
		return false;
	}
	quote_into(user, sizeof(user), name);
	quote_into(pass, sizeof(pass), password);
	return command(c, &sink, "LOGIN %s %s", user, pass);
}

static bool login(struct conn *c, const struct options *opt)
{
	return login_as(c, opt->user, opt->password);
}

/* --append: the destination session; the server must offer what conn_append relies on. */
static bool login_append(struct conn *d, const struct options *opt, SSL_CTX *ctx)
{
	if (!conn_open(d, opt, ctx) || !login_as(d, opt->append_user, opt->append_password))
		return false;
	struct response_sink sink = {0};
	if (!command(d, &sink, "CAPABILITY"))
		return false;
	if (!sink.can_append)
		fail(d, "the server lacks MULTIAPPEND or LITERAL+");
	return sink.can_append;
}

/* --append: the destination's folders, created before the clock's main work. */
static bool create_folders(const struct options *opt, SSL_CTX *ctx, const struct work *w,
                           char *error, size_t error_size)
{
	struct conn d;
	bool ok = login_append(&d, opt, ctx);
	for (size_t i = 0; ok && i < w->folder_count; i++) {
		char quoted[1100];
		struct response_sink create = {.may_fail = true};
		quote_into(quoted, sizeof(quoted), w->folders[i].name);
		ok = command(&d, &create, "CREATE %s", quoted);
	}
	if (!ok)
		snprintf(error, error_size, "%s: %s", opt->append_user, d.error);
	conn_close(&d);
	return ok;
}

static bool drain_folder(struct conn *c, const char *name, const struct options *opt,
                         struct conn *dest, struct totals *t)
{
	char quoted[1100];
	struct response_sink sink = {.store = opt->store, .append = dest, .append_to = quoted};
	quote_into(quoted, sizeof(quoted), name);
	if (!command(c, &sink, "EXAMINE %s", quoted))
		return false;
	if (sink.exists == 0)
		return true;
	if (!command(c, &sink, "UID FETCH 1:* (BODY.PEEK[] FLAGS INTERNALDATE)") ||
	    (dest && !append_close_group(dest)))
		return false;
	t->messages += sink.fetches;
	t->bytes += sink.literal_bytes;
	return true;
}

static int by_messages_desc(const void *a, const void *b)
{
	const struct folder *fa = a, *fb = b;
	return (fa->messages < fb->messages) - (fa->messages > fb->messages);
}

static bool list_folders(struct conn *c, struct work *w)
{
	struct response_sink sink = {0};
	w->folders = xmalloc(sizeof(*w->folders) * MAX_FOLDERS);
	sink.folders = w->folders;
	sink.folder_count = &w->folder_count;
	if (!command(c, &sink, "LIST \"\" \"*\""))
		return false;
	for (size_t i = 0; i < w->folder_count; i++) {
		char quoted[1100];
		struct response_sink status = {0};
		quote_into(quoted, sizeof(quoted), w->folders[i].name);
		if (!command(c, &status, "STATUS %s (MESSAGES)", quoted))
			return false;
		w->folders[i].messages = status.status_messages;
	}
	qsort(w->folders, w->folder_count, sizeof(*w->folders), by_messages_desc);
	return true;
}

/* ---- workers ----------------------------------------------------------------------------- */

struct worker {
	pthread_t thread;
	struct work *work;
	struct conn conn;
	struct conn dest; /* --append */
	struct totals totals;
	bool have_conn, have_dest;
};

static const char *next_folder(struct work *w)
{
	const char *name = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->next_folder < w->folder_count)
		name = w->folders[w->next_folder++].name;
	pthread_mutex_unlock(&w->lock);
	return name;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	struct conn *c = &wk->conn;
	if (!wk->have_conn) {
		if (!conn_open(c, wk->work->opt, wk->work->ctx) || !login(c, wk->work->opt))
			goto failed;
		wk->have_conn = true;
	}
	const struct options *opt = wk->work->opt;
	struct conn *dest = opt->append_user ? &wk->dest : NULL;
	wk->have_dest = dest != NULL;
	if (dest && !login_append(dest, opt, wk->work->ctx)) {
		char why[sizeof(dest->error)];
		memcpy(why, dest->error, sizeof(why));
		snprintf(c->error, sizeof(c->error), "%.100s: %.400s", opt->append_user, why);
		goto failed;
	}
	if (opt->sync_batch > 0) {
		c->store_dir = opt->store;
		c->store_batch = opt->sync_batch;
	}
	const char *name;
	while ((name = next_folder(wk->work)) != NULL) {
		if (!drain_folder(c, name, opt, dest, &wk->totals))
			goto failed;
	}
	if (!flight_start(c) || !flight_wait(c))
		goto failed;
	if (dest && !append_answers(dest)) {
		snprintf(c->error, sizeof(c->error), "%s", dest->error);
		goto failed;
	}
	struct response_sink sink = {0};
	command(c, &sink, "LOGOUT");
	if (dest)
		command(dest, &sink, "LOGOUT");
	return NULL;
failed:
	flight_wait(c);
	wk->totals.failed = true;
	snprintf(wk->totals.error, sizeof(wk->totals.error), "%s", c->error);
	return NULL;
}

static SSL_CTX *make_tls_context(const struct options *opt)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	if (opt->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, opt->ca_file, NULL) != 1) {
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

static bool parse_options(int argc, char **argv, struct options *opt)
{
	*opt = (struct options){.connections = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--tls") == 0) {
			opt->tls = true;
			continue;
		}
		if (strcmp(a, "--sync") == 0) {
			opt->sync = true;
			continue;
		}
		if (strcmp(a, "--sha256") == 0) {
			opt->sha256 = true;
			continue;
		}
		if (!v)
			return false;
		if (strcmp(a, "--host") == 0)
			opt->host = v;
		else if (strcmp(a, "--port") == 0)
			opt->port = v;
		else if (strcmp(a, "--user") == 0)
			opt->user = v;
		else if (strcmp(a, "--ca") == 0)
			opt->ca_file = v;
		else if (strcmp(a, "--connections") == 0)
			opt->connections = atoi(v);
		else if (strcmp(a, "--store") == 0)
			opt->store = v;
		else if (strcmp(a, "--append") == 0)
			opt->append_user = v;
		else if (strcmp(a, "--sync-batch") == 0 && atoi(v) > 0) {
			opt->sync_batch = (unsigned)atoi(v);
			opt->sync = true; /* the write-back thread and the last syncfs as well */
		} else
			return false;
		i++;
	}
	opt->password = getenv("LIMIT_PASSWORD");
	opt->append_password = getenv("LIMIT_APPEND_PASSWORD");
	if (opt->append_user && (opt->store || !opt->append_password))
		return false;
	if ((opt->sync || opt->sha256) && !opt->store)
		return false;
	return opt->host && opt->port && opt->user && opt->password && opt->connections >= 1 &&
	       opt->connections <= 256;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct options opt;
	if (!parse_options(argc, argv, &opt)) {
		fputs("usage: limit --host H --port P --user U [--tls] [--ca FILE] [--connections "
		      "N] [--store DIR [--sync | --sync-batch N] [--sha256] | --append USER]\n"
		      "       (passwords in LIMIT_PASSWORD, LIMIT_APPEND_PASSWORD)\n",
		      stderr);
		return 2;
	}
	if (opt.store) {
		char path[4096];
		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s%s", opt.store,
			         i == 0   ? ""
			         : i == 1 ? "/tmp"
			                  : "/cur");
			if (mkdir(path, 0700) != 0 && errno != EEXIST) {
				fprintf(stderr, "limit: cannot create %s: %s\n", path,
				        strerror(errno));
				return 1;
			}
		}
	}
	double began = now_seconds();
	if (opt.sync && !syncer_start(opt.store))
		return 1;
	struct work w = {.opt = &opt};
	pthread_mutex_init(&w.lock, NULL);
	if (opt.tls && !(w.ctx = make_tls_context(&opt))) {
		fprintf(stderr, "limit: cannot set up TLS (CA file %s)\n", opt.ca_file);
		return 1;
	}
	struct worker *workers = calloc((size_t)opt.connections, sizeof(*workers));
	if (!workers)
		abort();
	/* The first connection lists the folders, then drains like the others. */
	struct worker *first = &workers[0];
	first->work = &w;
	if (!conn_open(&first->conn, &opt, w.ctx) || !login(&first->conn, &opt) ||
	    !list_folders(&first->conn, &w)) {
		fprintf(stderr, "limit: %s\n", first->conn.error);
		return 1;
	}
	first->have_conn = true;
	char error[600];
	if (opt.append_user && !create_folders(&opt, w.ctx, &w, error, sizeof(error))) {
		fprintf(stderr, "limit: %s\n", error);
		return 1;
	}
	for (int i = 0; i < opt.connections; i++) {
		workers[i].work = &w;
		workers[i].conn.id = i;
		pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]);
	}
	struct totals sum = {0};
	for (int i = 0; i < opt.connections; i++) {
		pthread_join(workers[i].thread, NULL);
		sum.messages += workers[i].totals.messages;
		sum.bytes += workers[i].totals.bytes;
		if (workers[i].totals.failed) {
			fprintf(stderr, "limit: connection %d: %s\n", i + 1,
			        workers[i].totals.error);
			sum.failed = true;
		}
		conn_close(&workers[i].conn);
		if (workers[i].have_dest)
			conn_close(&workers[i].dest);
	}
	if (opt.sync && !syncer_finish(opt.store))
		sum.failed = true;
	printf("messages=%llu bytes=%llu folders=%zu connections=%d seconds=%.3f\n", sum.messages,
	       sum.bytes, w.folder_count, opt.connections, now_seconds() - began);
	for (size_t i = 0; i < w.folder_count; i++)
		free(w.folders[i].name);
	free(w.folders);
	free(workers);
	if (w.ctx)
		SSL_CTX_free(w.ctx);
	return sum.failed ? 1 : 0;
}
