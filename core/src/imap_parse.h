/* IMAP response parser: reads one response at a time from an imap_io and
 * turns it into a small tree of values. Everything it keeps is bounded:
 * a line segment (up to CRLF) by max_line, a whole response by
 * max_response; a literal is either handed to a hook (which streams or
 * discards it without buffering), read into memory when it is small, or
 * discarded in chunks and left as a GW_IV_SKIPPED placeholder. */
#ifndef GW_IMAP_PARSE_H
#define GW_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/status.h>

#include "imap_io.h"
#include "util.h"

#define GW_IMAP_MAX_LINE           (1024u * 1024u)
#define GW_IMAP_MAX_RESPONSE       (8u * 1024u * 1024u)
#define GW_IMAP_MAX_INLINE_LITERAL (1024u * 1024u)
#define GW_IMAP_MAX_DEPTH          64
/* Below this many bytes left of a literal, one read into the read buffer takes
 * them together with what follows, which saves a call. */
#define GW_IMAP_DIRECT_MIN (32u * 1024u)

enum imap_vtype {
	GW_IV_ATOM = 1, /* also numbers and flags; BODY[...]<n> is one atom */
	GW_IV_STRING,   /* quoted or literal; may contain NUL bytes (see len) */
	GW_IV_NIL,
	GW_IV_LIST,
	GW_IV_SKIPPED, /* a literal that was streamed or discarded; len is its size */
};

struct imap_value {
	enum imap_vtype type;
	char *str;                /* ATOM, STRING: NUL-terminated copy */
	size_t len;               /* ATOM, STRING: bytes in str; SKIPPED: literal size */
	struct imap_value *items; /* LIST */
	size_t count;
	size_t cap;
};

enum imap_resp_kind {
	GW_IMAP_UNTAGGED = 1,
	GW_IMAP_TAGGED,
	GW_IMAP_CONTINUATION,
};

enum imap_cond {
	GW_IMAP_COND_NONE = 0, /* a data response ("* 5 EXISTS", "* LIST ...") */
	GW_IMAP_OK,
	GW_IMAP_NO,
	GW_IMAP_BAD,
	GW_IMAP_BYE,
	GW_IMAP_PREAUTH,
};

struct imap_response {
	enum imap_resp_kind kind;
	char *tag;              /* TAGGED */
	enum imap_cond cond;    /* status responses (tagged or untagged) */
	struct imap_value code; /* LIST: the response code, "[UIDNEXT 5]" -> (UIDNEXT 5) */
	char *text;             /* status or continuation text, "" if none */
	struct imap_value data; /* LIST: untagged data, "* 3 FETCH (...)" -> (3 FETCH (...)) */
	size_t mem;
};

struct imap_parser;

/* Called when a literal of @p size bytes starts inside @p list (the innermost
 * list being built; @p top is the response's data list). It may consume the
 * literal with imap_parser_stream_literal() and set *consumed; otherwise the
 * parser keeps it in memory or discards it. A non-GW_OK return aborts the
 * parse (the connection is then unusable). */
typedef gw_status (*imap_literal_hook)(void *arg, struct imap_parser *parser,
                                       const struct imap_value *top, const struct imap_value *list,
                                       uint64_t size, bool *consumed);

/* Receives streamed literal bytes; a non-GW_OK return discards the rest. */
typedef gw_status (*imap_chunk_fn)(void *arg, const void *data, size_t len);
/* Where the consumer of a streamed literal can take its next bytes in place:
 * up to *len of them (NULL: nowhere). */
typedef void *(*imap_room_fn)(void *arg, size_t *len);

struct imap_parser {
	struct imap_io *io;
	struct gw_ctx *ctx;
	struct gw_buf line; /* current segment, without CRLF */
	size_t pos;         /* tokenizer position in line */
	size_t max_line;
	size_t max_response;
	size_t max_inline_literal;
	imap_literal_hook hook;
	void *hook_arg;
	size_t mem; /* bytes held by the response being built */
};

void imap_parser_init(struct imap_parser *p, struct imap_io *io, struct gw_ctx *ctx);
void imap_parser_free(struct imap_parser *p);

/* Read the next complete response. On failure (GW_ERR_SESSION, recorded with
 * gw_fail) the stream position is lost and the connection must be dropped. */
gw_status imap_read_response(struct imap_parser *p, struct imap_response *resp);
void imap_response_free(struct imap_response *resp);

/* Consume the literal announced to a hook: pass its bytes to @p sink straight
 * from the read buffer (or discard them if @p sink is NULL). If the sink fails,
 * the rest is discarded and its status is stored in *sink_status. Returns a
 * failure only for transport errors. */
gw_status imap_parser_stream_literal(struct imap_parser *p, uint64_t size, imap_chunk_fn sink,
                                     void *arg, gw_status *sink_status);
/* The same, and once the read buffer is empty, at least GW_IMAP_DIRECT_MIN
 * bytes of the literal are left and @p room offers a place, the bytes are
 * received straight into it and @p sink is called with that place: a large
 * body then reaches its consumer without a copy through the read buffer. */
gw_status imap_parser_stream_literal_into(struct imap_parser *p, uint64_t size, imap_room_fn room,
                                          imap_chunk_fn sink, void *arg, gw_status *sink_status);

/* True if the parser holds unread bytes beyond what was consumed (STARTTLS
 * must not see any: they would be plaintext injected before the handshake). */
bool imap_parser_has_buffered(const struct imap_parser *p);

/* ---- value helpers ---- */

bool imap_value_is_atom(const struct imap_value *v, const char *word); /* case-insensitive */
/* ATOM or STRING (not NIL), for astring/nstring fields. */
bool imap_value_is_string(const struct imap_value *v);
bool imap_value_u32(const struct imap_value *v, uint32_t *out);
bool imap_value_u64(const struct imap_value *v, uint64_t *out);
/* Item @p i of list @p v, or NULL if @p v is not a list or too short. */
const struct imap_value *imap_list_item(const struct imap_value *v, size_t i);
/* In a list of name/value pairs (a FETCH response), the value after the
 * first item equal to @p name (case-insensitive atom); NULL if absent. */
const struct imap_value *imap_list_get(const struct imap_value *v, const char *name);
/* Same, but for names starting with @p prefix (e.g. "BODY["). */
const struct imap_value *imap_list_get_prefix(const struct imap_value *v, const char *prefix,
                                              const char **name);

/* ---- tracing ---- */

/* True when protocol traces are being written (GW_LOG_TRACE). */
bool imap_trace_enabled(void);
/* Log "<dir>: <text>" at trace level, truncated, control bytes escaped. */
void imap_trace(struct gw_ctx *ctx, const char *dir, const char *text, size_t len);

#endif
