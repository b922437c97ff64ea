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
 * which a reader that discards bytes does not pay.
 *
 * usage: limit --host H --port P --user U [--tls] [--ca FILE] [--connections N]
 *        [--store DIR]
 *        the password comes from the environment variable LIMIT_PASSWORD
 * prints: messages=M bytes=B folders=F connections=N seconds=S
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
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
	const char *store; /* NULL: discard */
	bool tls;
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
	unsigned stored; /* --store: messages written by this connection */
	int id;          /* --store: the connection's number, in file names */
	char error[512];
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
	memset(c, 0, sizeof(*c));
	c->buf = xmalloc(READ_BUFFER_SIZE);
	c->line_cap = 4096;
	c->line = xmalloc(c->line_cap);
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
		c->pos += take;
		n -= take;
	}
	return true;
}

/* --store: one message into DIR/tmp/, then renamed into DIR/cur/. */
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
	bool ok = conn_skip(c, n, fd);
	close(fd);
	if (ok && rename(tmp, cur) != 0) {
		fail(c, "cannot rename %s: %s", tmp, strerror(errno));
		return false;
	}
	return ok;
}

/* ---- commands ---------------------------------------------------------------------------- */

struct response_sink {
	const char *store; /* --store DIR for the literals, or NULL */
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
			if (strncmp(c->line + tag_len + 1, "OK", 2) == 0)
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
				sink->literal_bytes += (unsigned long long)literal;
				if (sink->store ? !conn_store(c, sink->store,
				                              (unsigned long long)literal)
				                : !conn_skip(c, (unsigned long long)literal, -1))
					return false;
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

static bool login(struct conn *c, const struct options *opt)
{
	char user[600], pass[600];
	struct response_sink sink = {0};
	if (!conn_read_line(c)) /* greeting */
		return false;
	if (strncmp(c->line, "* OK", 4) != 0) {
		fail(c, "unexpected greeting: %s", c->line);
		return false;
	}
	quote_into(user, sizeof(user), opt->user);
	quote_into(pass, sizeof(pass), opt->password);
	return command(c, &sink, "LOGIN %s %s", user, pass);
}

static bool drain_folder(struct conn *c, const char *name, const char *store, struct totals *t)
{
	char quoted[1100];
	struct response_sink sink = {.store = store};
	quote_into(quoted, sizeof(quoted), name);
	if (!command(c, &sink, "EXAMINE %s", quoted))
		return false;
	if (sink.exists == 0)
		return true;
	if (!command(c, &sink, "UID FETCH 1:* (BODY.PEEK[] FLAGS INTERNALDATE)"))
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
	struct totals totals;
	bool have_conn;
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
	const char *name;
	while ((name = next_folder(wk->work)) != NULL) {
		if (!drain_folder(c, name, wk->work->opt->store, &wk->totals))
			goto failed;
	}
	struct response_sink sink = {0};
	command(c, &sink, "LOGOUT");
	return NULL;
failed:
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
		else
			return false;
		i++;
	}
	opt->password = getenv("LIMIT_PASSWORD");
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
		      "N] [--store DIR]\n"
		      "       (password in LIMIT_PASSWORD)\n",
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
	}
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
