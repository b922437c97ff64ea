#include "imap_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls_trust.h"
#include "util.h"

static int64_t now_ms(void)
{
	return gw_monotonic_us() / 1000;
}

/* Wait until @p fd is ready for @p events or the deadline passes.
 * Returns 1 when ready, 0 on timeout, -1 on error (errno set). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int rc = poll(&pfd, 1, left > 60000000 ? 60000000 : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			continue; /* loop re-checks the deadline */
		if (errno != EINTR)
			return -1;
	}
}

/* A wait for announced bytes (imap_io_fill's @p coming) sleeps this long
 * until they are there, then wakes at the first byte: a server that trickles
 * them slower still counts as sending, as the timeout means it. */
#define WAKE_SLICE_MS 50

/* Set the socket's SO_RCVLOWAT to @p bytes, unless it is set so already. */
static void set_wake_at(struct imap_io *io, int bytes)
{
	if (bytes == io->wake_at)
		return;
	/* Where the option is refused, each packet wakes us, as without it. */
	if (setsockopt(io->fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof(bytes)) == 0)
		io->wake_at = bytes;
}

/* Wait until the socket has bytes to read: @p wire of them (at most
 * GW_IMAP_WAKE_MAX) if they come within WAKE_SLICE_MS, else the first.
 * @p wire must be bytes the server has committed to send. Returns as
 * wait_fd. */
static int wait_readable(struct imap_io *io, uint64_t wire, int64_t deadline)
{
	int bytes = wire >= GW_IMAP_WAKE_MAX ? (int)GW_IMAP_WAKE_MAX : wire > 1 ? (int)wire : 1;
	set_wake_at(io, bytes);
	if (bytes > 1) {
		int64_t slice = now_ms() + WAKE_SLICE_MS;
		int ready = wait_fd(io->fd, POLLIN, slice < deadline ? slice : deadline);
		if (ready != 0)
			return ready;
		set_wake_at(io, 1);
	}
	return wait_fd(io->fd, POLLIN, deadline);
}

static gw_status fail_timeout(struct imap_io *io, const char *what)
{
	return gw_fail(io->ctx, GW_ERR_SESSION, "timed out after %d ms %s %s:%u", io->timeout_ms,
	               what, io->host, io->port);
}

/* ---- TCP ---- */

static void tune_socket(int fd)
{
	int one = 1;
	/* Commands are small and pipelined: waiting for Nagle only adds latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* Connect one address; returns the socket or -1 with errno set (ETIMEDOUT on timeout). */
static int connect_address(const struct addrinfo *ai, int timeout_ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                ai->ai_protocol);
	if (fd < 0)
		return -1;
	tune_socket(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	int rc = wait_fd(fd, POLLOUT, now_ms() + timeout_ms);
	if (rc == 0)
		errno = ETIMEDOUT;
	if (rc <= 0)
		goto fail;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		goto fail;
	if (err == 0)
		return fd;
	errno = err;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

gw_status imap_io_connect(struct imap_io *io, struct gw_ctx *ctx, const char *host, uint16_t port,
                          uint32_t timeout_ms)
{
	memset(io, 0, sizeof(*io));
	io->fd = -1;
	io->wake_at = 1; /* SO_RCVLOWAT of a new socket */
	io->ctx = ctx;
	io->host = gw_xstrdup(host);
	io->port = port;
	io->timeout_ms = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;

	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *list = NULL;
	int rc = getaddrinfo(host, service, &hints, &list);
	if (rc != 0)
		return gw_fail(ctx, GW_ERR_SESSION, "cannot resolve host %s: %s", host,
		               gai_strerror(rc));

	int last_errno = 0;
	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		io->fd = connect_address(ai, io->timeout_ms);
		if (io->fd >= 0)
			break;
		last_errno = errno;
	}
	freeaddrinfo(list);
	if (io->fd < 0) {
		if (last_errno == ETIMEDOUT)
			return fail_timeout(io, "connecting to");
		return gw_fail(ctx, GW_ERR_SESSION, "cannot connect to %s:%u: %s", host, port,
		               strerror(last_errno));
	}
	io->buf = gw_xmalloc(GW_IMAP_READ_BUF);
	return GW_OK;
}

/* ---- a socket BIO that never raises SIGPIPE ----
 * OpenSSL's socket BIO writes with write(), which kills the process with
 * SIGPIPE when the server has gone; send(MSG_NOSIGNAL) turns that into EPIPE. */

static int bio_fd(BIO *bio)
{
	return (int)(intptr_t)BIO_get_data(bio);
}

static bool errno_is_retry(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int nosig_write(BIO *bio, const char *data, int len)
{
	BIO_clear_retry_flags(bio);
	ssize_t n = send(bio_fd(bio), data, (size_t)len, MSG_NOSIGNAL);
	if (n < 0 && errno_is_retry())
		BIO_set_retry_write(bio);
	return (int)n;
}

static int nosig_read(BIO *bio, char *data, int len)
{
	BIO_clear_retry_flags(bio);
	ssize_t n = recv(bio_fd(bio), data, (size_t)len, 0);
	if (n < 0 && errno_is_retry())
		BIO_set_retry_read(bio);
	return (int)n;
}

static int nosig_puts(BIO *bio, const char *s)
{
	return nosig_write(bio, s, (int)strlen(s));
}

static long nosig_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	(void)bio, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void nosig_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "godwit socket");
	if (!m)
		return;
	BIO_meth_set_write(m, nosig_write);
	BIO_meth_set_read(m, nosig_read);
	BIO_meth_set_puts(m, nosig_puts);
	BIO_meth_set_ctrl(m, nosig_ctrl);
	nosig_method = m;
}

static BIO *nosig_bio_new(int fd)
{
	pthread_once(&nosig_once, nosig_method_init);
	if (!nosig_method)
		return NULL;
	BIO *bio = BIO_new(nosig_method);
	if (!bio)
		return NULL;
	BIO_set_data(bio, (void *)(intptr_t)fd);
	BIO_set_init(bio, 1);
	return bio;
}

/* ---- TLS ---- */

/* The first queued OpenSSL error as text (the queue is cleared). */
static void openssl_reason(char *out, size_t size)
{
	unsigned long err = ERR_get_error();
	if (err == 0)
		snprintf(out, size, "%s", errno ? strerror(errno) : "connection closed");
	else
		ERR_error_string_n(err, out, size);
	ERR_clear_error();
}

static void warn_unverified_once(struct imap_io *io)
{
	static atomic_flag warned = ATOMIC_FLAG_INIT;
	if (!atomic_flag_test_and_set(&warned))
		gw_log(io->ctx, GW_LOG_WARN,
		       "tls_verify is false: the certificate of %s is not checked; the connection "
		       "can be intercepted",
		       io->host);
}

static gw_status configure_verification(struct imap_io *io, bool verify, const char *ca_file)
{
	if (!verify) {
		SSL_CTX_set_verify(io->ssl_ctx, SSL_VERIFY_NONE, NULL);
		warn_unverified_once(io);
		return GW_OK;
	}
	SSL_CTX_set_verify(io->ssl_ctx, SSL_VERIFY_PEER, NULL);
	char *error = NULL;
	X509_STORE *store = gw_tls_trust_store(ca_file, &error);
	if (store == NULL) {
		gw_status st = gw_fail(io->ctx, GW_ERR_CONFIG, "%s", error);
		free(error);
		return st;
	}
	SSL_CTX_set_cert_store(io->ssl_ctx, store); /* the context takes our reference */
	return GW_OK;
}

static bool is_ip_literal(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static gw_status configure_peer_name(struct imap_io *io, bool verify)
{
	if (is_ip_literal(io->host)) {
		/* No SNI for addresses (RFC 6066); the certificate must carry the IP. */
		if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(io->ssl), io->host) != 1)
			return gw_fail(io->ctx, GW_ERR_CONFIG, "cannot check address %s", io->host);
		return GW_OK;
	}
	if (SSL_set_tlsext_host_name(io->ssl, io->host) != 1 ||
	    (verify && SSL_set1_host(io->ssl, io->host) != 1))
		return gw_fail(io->ctx, GW_ERR_CONFIG, "invalid TLS host name %s", io->host);
	return GW_OK;
}

/* A TLS failure other than "wait": an EOF is reported as a closed connection. */
static gw_status fail_tls(struct imap_io *io, int err, const char *what)
{
	int saved = err == SSL_ERROR_SYSCALL ? errno : 0;
	unsigned long queued = ERR_peek_error();
	if ((err == SSL_ERROR_SYSCALL && queued == 0 && saved == 0) ||
	    ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return gw_fail(io->ctx, GW_ERR_SESSION, "connection closed by %s:%u", io->host,
		               io->port);
	}
	char why[256];
	errno = saved;
	openssl_reason(why, sizeof(why));
	return gw_fail(io->ctx, GW_ERR_SESSION, "TLS error %s %s:%u: %s", what, io->host, io->port,
	               why);
}

/* Wait for what OpenSSL asked for after a non-positive return @p rc; to
 * read, for @p wire bytes the server has committed to send (wait_readable).
 * Returns GW_OK to retry; otherwise the failure is recorded with @p what. */
static gw_status ssl_wait(struct imap_io *io, int rc, uint64_t wire, int64_t deadline,
                          const char *what)
{
	int err = SSL_get_error(io->ssl, rc);
	int ready;
	if (err == SSL_ERROR_WANT_READ)
		ready = wait_readable(io, wire, deadline);
	else if (err == SSL_ERROR_WANT_WRITE)
		ready = wait_fd(io->fd, POLLOUT, deadline);
	else if (err == SSL_ERROR_ZERO_RETURN)
		return gw_fail(io->ctx, GW_ERR_SESSION, "connection closed by %s:%u", io->host,
		               io->port);
	else
		return fail_tls(io, err, what);
	if (ready == 0)
		return fail_timeout(io, what);
	if (ready < 0)
		return gw_fail(io->ctx, GW_ERR_SESSION, "poll failed %s %s:%u: %s", what, io->host,
		               io->port, strerror(errno));
	return GW_OK;
}

/* Retrying cannot make an untrusted certificate trusted: GW_ERR_CONFIG. */
static gw_status fail_verify(struct imap_io *io, long verify)
{
	const char *hint = "set tls_verify: false or ca_file to trust it";
	if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
		hint = "connect with a name the certificate carries, or set tls_verify: false";
	return gw_fail(io->ctx, GW_ERR_CONFIG, "certificate verify failed for host %s: %s; %s",
	               io->host, X509_verify_cert_error_string(verify), hint);
}

static gw_status handshake(struct imap_io *io)
{
	int64_t deadline = now_ms() + io->timeout_ms;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int rc = SSL_connect(io->ssl);
		if (rc == 1)
			return GW_OK;
		long verify = SSL_get_verify_result(io->ssl);
		if (verify != X509_V_OK)
			return fail_verify(io, verify);
		gw_status st = ssl_wait(io, rc, 0, deadline, "in TLS handshake with");
		if (st != GW_OK)
			return st;
	}
}

gw_status imap_io_start_tls(struct imap_io *io, bool verify, const char *ca_file)
{
	io->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!io->ssl_ctx)
		return gw_fail(io->ctx, GW_ERR_SESSION, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(io->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(io->ssl_ctx, SSL_MODE_AUTO_RETRY);
	/* Read ahead into a large buffer: without it OpenSSL reads each record's
	 * header and body with two recv() calls, one pair per 16 KB of mail. */
	SSL_CTX_set_read_ahead(io->ssl_ctx, 1);
	SSL_CTX_set_default_read_buffer_len(io->ssl_ctx, GW_TLS_READ_AHEAD);
	gw_status st = configure_verification(io, verify, ca_file);
	if (st != GW_OK)
		return st;
	io->ssl = SSL_new(io->ssl_ctx);
	BIO *bio = nosig_bio_new(io->fd);
	if (!io->ssl || !bio) {
		BIO_free(bio);
		return gw_fail(io->ctx, GW_ERR_SESSION, "cannot create a TLS session");
	}
	SSL_set_bio(io->ssl, bio, bio);
	st = configure_peer_name(io, verify);
	if (st != GW_OK)
		return st;
	return handshake(io);
}

bool imap_io_is_tls(const struct imap_io *io)
{
	return io->ssl != NULL;
}

/* ---- reading and writing ---- */

static gw_status write_plain(struct imap_io *io, const unsigned char *p, size_t len,
                             int64_t deadline)
{
	while (len > 0) {
		ssize_t n = send(io->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n, len -= (size_t)n;
			continue;
		}
		if (n < 0 && !errno_is_retry())
			return gw_fail(io->ctx, GW_ERR_SESSION, "cannot write to %s:%u: %s",
			               io->host, io->port, strerror(errno));
		int ready = wait_fd(io->fd, POLLOUT, deadline);
		if (ready == 0)
			return fail_timeout(io, "writing to");
		if (ready < 0)
			return gw_fail(io->ctx, GW_ERR_SESSION, "poll failed writing to %s:%u: %s",
			               io->host, io->port, strerror(errno));
	}
	return GW_OK;
}

static gw_status write_tls(struct imap_io *io, const unsigned char *p, size_t len, int64_t deadline)
{
	while (len > 0) {
		int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
		ERR_clear_error();
		errno = 0;
		int n = SSL_write(io->ssl, p, chunk);
		if (n > 0) {
			p += n, len -= (size_t)n;
			continue;
		}
		gw_status st = ssl_wait(io, n, 0, deadline, "writing to");
		if (st != GW_OK)
			return st;
	}
	return GW_OK;
}

gw_status imap_io_write(struct imap_io *io, const void *data, size_t len)
{
	if (io->fd < 0)
		return gw_fail(io->ctx, GW_ERR_SESSION, "connection to %s:%u is closed", io->host,
		               io->port);
	int64_t deadline = now_ms() + io->timeout_ms;
	if (io->ssl)
		return write_tls(io, data, len, deadline);
	return write_plain(io, data, len, deadline);
}

/* The plaintext one TLS record may carry (RFC 8446 5.1, RFC 5246 6.2.1).
 * When SSL_read wants to read, OpenSSL may hold part of a record: up to this
 * much of what the server announced may already be inside it, and only the
 * rest is sure to come on the socket. */
#define TLS_RECORD_PLAINTEXT_MAX (16u * 1024u)

/* One recv() or SSL_read() of up to @p max bytes into @p dst, waiting until
 * @p deadline for the first byte (@p coming: imap_io_fill). */
static gw_status read_plain(struct imap_io *io, unsigned char *dst, size_t max, uint64_t coming,
                            size_t *got, int64_t deadline)
{
	for (;;) {
		ssize_t n = recv(io->fd, dst, max, 0);
		if (n > 0) {
			*got = (size_t)n;
			return GW_OK;
		}
		if (n == 0)
			return gw_fail(io->ctx, GW_ERR_SESSION, "connection closed by %s:%u",
			               io->host, io->port);
		if (!errno_is_retry())
			return gw_fail(io->ctx, GW_ERR_SESSION, "cannot read from %s:%u: %s",
			               io->host, io->port, strerror(errno));
		int ready = wait_readable(io, coming, deadline);
		if (ready == 0)
			return fail_timeout(io, "waiting for");
		if (ready < 0)
			return gw_fail(io->ctx, GW_ERR_SESSION,
			               "poll failed reading from %s:%u: %s", io->host, io->port,
			               strerror(errno));
	}
}

static gw_status read_tls(struct imap_io *io, unsigned char *dst, size_t max, uint64_t coming,
                          size_t *got, int64_t deadline)
{
	int chunk = max > INT32_MAX ? INT32_MAX : (int)max;
	uint64_t wire = coming > TLS_RECORD_PLAINTEXT_MAX ? coming - TLS_RECORD_PLAINTEXT_MAX : 0;
	for (;;) {
		ERR_clear_error();
		errno = 0;
		int n = SSL_read(io->ssl, dst, chunk);
		if (n > 0) {
			*got = (size_t)n;
			return GW_OK;
		}
		gw_status st = ssl_wait(io, n, wire, deadline, "waiting for");
		if (st != GW_OK)
			return st;
	}
}

static gw_status read_some(struct imap_io *io, unsigned char *dst, size_t max, uint64_t coming,
                           size_t *got)
{
	if (io->fd < 0)
		return gw_fail(io->ctx, GW_ERR_SESSION, "connection to %s:%u is closed", io->host,
		               io->port);
	int64_t deadline = now_ms() + io->timeout_ms;
	if (io->ssl)
		return read_tls(io, dst, max, coming, got, deadline);
	return read_plain(io, dst, max, coming, got, deadline);
}

gw_status imap_io_fill(struct imap_io *io, uint64_t coming)
{
	if (io->pos > 0) {
		memmove(io->buf, io->buf + io->pos, io->end - io->pos);
		io->end -= io->pos;
		io->pos = 0;
	}
	if (io->end == GW_IMAP_READ_BUF)
		return gw_fail(io->ctx, GW_ERR_SESSION, "read buffer full (internal error)");
	size_t got = 0;
	gw_status st = read_some(io, io->buf + io->end, GW_IMAP_READ_BUF - io->end, coming, &got);
	io->end += got;
	return st;
}

gw_status imap_io_read_into(struct imap_io *io, void *dst, size_t max, uint64_t coming, size_t *got)
{
	*got = 0;
	if (imap_io_available(io) > 0 || max == 0)
		return gw_fail(io->ctx, GW_ERR_SESSION,
		               "direct read with buffered bytes or no room (internal error)");
	return read_some(io, dst, max, coming, got);
}

void imap_io_close(struct imap_io *io)
{
	if (io->ssl) {
		/* No close_notify round trip: the server closes after LOGOUT anyway. */
		SSL_free(io->ssl);
		io->ssl = NULL;
	}
	if (io->ssl_ctx) {
		SSL_CTX_free(io->ssl_ctx);
		io->ssl_ctx = NULL;
	}
	if (io->fd >= 0) {
		close(io->fd);
		io->fd = -1;
	}
	free(io->buf);
	io->buf = NULL;
	io->pos = io->end = 0;
	free(io->host);
	io->host = NULL;
}
