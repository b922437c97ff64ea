/* Byte transport of the IMAP client: a TCP connection, optionally wrapped
 * in TLS (OpenSSL), with a deadline on every read and write and one 256 KiB
 * read buffer that the parser consumes in place. Every failure is recorded
 * with gw_fail() on the connection's context and returned as a status:
 * GW_ERR_SESSION for network, timeout and TLS trouble, GW_ERR_CONFIG where
 * retrying cannot help (an untrusted certificate, an unreadable ca_file). */
#ifndef GW_IMAP_IO_H
#define GW_IMAP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/status.h>

/* One recv()/SSL_read() takes up to this much: bodies stream through it. */
#define GW_IMAP_READ_BUF (256u * 1024u)
/* OpenSSL's own read-ahead buffer for TLS connections. */
#define GW_TLS_READ_AHEAD (128u * 1024u)
/* A wait for announced bytes wakes once this many are there (imap_io_fill). */
#define GW_IMAP_WAKE_MAX (256u * 1024u)

struct gw_ctx;
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

struct imap_io {
	struct gw_ctx *ctx;
	char *host; /* for messages and certificate checks */
	uint16_t port;
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;
	int timeout_ms;
	unsigned char *buf; /* GW_IMAP_READ_BUF bytes; unread data is buf[pos..end) */
	size_t pos;
	size_t end;
	int wake_at; /* the socket's SO_RCVLOWAT as last set (the default: 1) */
};

/* Resolve @p host, connect within @p timeout_ms (tried per address). */
gw_status imap_io_connect(struct imap_io *io, struct gw_ctx *ctx, const char *host, uint16_t port,
                          uint32_t timeout_ms);

/* Run a TLS handshake over the connected socket. With @p verify the chain
 * must lead to the system store or @p ca_file and name @c host. */
gw_status imap_io_start_tls(struct imap_io *io, bool verify, const char *ca_file);

bool imap_io_is_tls(const struct imap_io *io);

/* Write all @p len bytes or fail. */
gw_status imap_io_write(struct imap_io *io, const void *data, size_t len);

/* Read at least one more byte into the buffer (compacting it first), or fail
 * on EOF, timeout or a TLS error. Fails with GW_ERR_SESSION if the buffer is
 * already full of unread bytes (the caller must consume first).
 *
 * @p coming: how many more bytes the server has committed to send (the rest
 * of a literal whose size it announced), 0 if the caller cannot tell. With
 * nothing to read yet, the wait then sleeps until up to GW_IMAP_WAKE_MAX of
 * them are there instead of waking for each packet: a wake-up costs both ends
 * a context switch, and a server that writes a few KB at a time would
 * otherwise wake the client for each (bench/PROFILE.md, eighteenth pass). */
gw_status imap_io_fill(struct imap_io *io, uint64_t coming);

static inline size_t imap_io_available(const struct imap_io *io)
{
	return io->end - io->pos;
}

/* With nothing buffered: receive up to @p max bytes straight into @p dst (one
 * recv() or SSL_read(), the same waits and failures as imap_io_fill), so a
 * large literal reaches its consumer's memory without passing through the
 * read buffer. *got is how many came; @p coming as for imap_io_fill. */
gw_status imap_io_read_into(struct imap_io *io, void *dst, size_t max, uint64_t coming,
                            size_t *got);

/* Close the connection and free everything; safe to call twice. */
void imap_io_close(struct imap_io *io);

#endif
