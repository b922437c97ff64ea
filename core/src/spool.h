/* Where a message's bytes live between the source and the sink: in a reused
 * memory buffer below a threshold, in an unlinked temporary file (mapped for
 * the sink) above it. The SHA-256 is computed while the bytes arrive, so the
 * message is read once and never held twice. One spool per worker. */
#ifndef GW_SPOOL_H
#define GW_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_spool;

/* @p tmpdir: folder for large messages (NULL: $TMPDIR or /tmp).
 * @p mem_threshold: messages up to this size stay in memory (0: 2 MiB). */
struct gw_spool *gw_spool_new(const char *tmpdir, size_t mem_threshold);
void gw_spool_free(struct gw_spool *spool);

/* Start a message of @p expected_size bytes (the server's literal size). */
bool gw_spool_begin(struct gw_spool *spool, uint64_t expected_size, char **error);
bool gw_spool_write(struct gw_spool *spool, const void *data, size_t len, char **error);
/* Where the message's next bytes may be received in place, up to *room of them
 * (NULL, *room 0: nowhere). Writing them with gw_spool_write from that very
 * address takes them without a copy; the address is valid until that write. */
unsigned char *gw_spool_tail(struct gw_spool *spool, size_t *room);
/* Finish: the bytes (contiguous, read-only, valid until the next begin or
 * free), their length and lower-case hex SHA-256. Fails if fewer/more bytes
 * than announced arrived (write already refuses the first byte too many).
 * Errors: *error is one line, caller frees. */
bool gw_spool_finish(struct gw_spool *spool, const unsigned char **data, size_t *len,
                     char sha256_hex[65], char **error);
/* After finish: the descriptor of the file that holds the bytes from offset 0
 * (a sink may copy it in the kernel instead of touching the mapping), or -1 if
 * they are in memory. Valid as long as the bytes are. */
int gw_spool_file(const struct gw_spool *spool);

/* Message-ID header value of a message (unfolded, without surrounding
 * whitespace; angle brackets kept), or NULL if absent. Caller frees. Looks
 * only at the header block. */
char *gw_message_id_of(const unsigned char *data, size_t len);
/* After finish: the same for the spool's message, read from memory when the
 * header block ends within the first 64 KiB, which a message in the file
 * keeps aside as it arrives. So the mapping stays untouched: on ext4 with
 * large folios one touched page of it maps up to 2 MiB of page cache into
 * the process (bench/PROFILE.md, ninth pass). */
char *gw_spool_message_id(const struct gw_spool *spool);

#endif
