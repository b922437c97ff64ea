/* Response grammar (RFC 3501 section 9, read leniently where servers differ):
 *   response = "+" text | "*" SP (status | data) | tag SP status
 *   status   = ("OK" | "NO" | "BAD" | "BYE" | "PREAUTH") [SP "[" code "]"] [SP text]
 *   data     = values up to CRLF; a value is an atom, "quoted", {n}/~{n} literal,
 *              NIL or a parenthesised list of values.
 * A literal ends its line segment: the parser reads its bytes and then the
 * next segment, and goes on filling the same lists. */
#include "imap_parse.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

void imap_parser_init(struct imap_parser *p, struct imap_io *io, struct gw_ctx *ctx)
{
	memset(p, 0, sizeof(*p));
	p->io = io;
	p->ctx = ctx;
	p->max_line = GW_IMAP_MAX_LINE;
	p->max_response = GW_IMAP_MAX_RESPONSE;
	p->max_inline_literal = GW_IMAP_MAX_INLINE_LITERAL;
}

void imap_parser_free(struct imap_parser *p)
{
	gw_buf_free(&p->line);
}

bool imap_parser_has_buffered(const struct imap_parser *p)
{
	return imap_io_available(p->io) > 0;
}

/* ---- tracing ---- */

bool imap_trace_enabled(void)
{
	return gw_log_get_level() >= GW_LOG_TRACE;
}

void imap_trace(struct gw_ctx *ctx, const char *dir, const char *text, size_t len)
{
	enum { TRACE_MAX = 512 };
	char shown[TRACE_MAX * 4 + 8];
	size_t o = 0;
	for (size_t i = 0; i < len && i < TRACE_MAX; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", c);
		else
			shown[o++] = (char)c;
	}
	if (len > TRACE_MAX)
		o += (size_t)snprintf(shown + o, sizeof(shown) - o, "...");
	shown[o] = '\0';
	gw_log(ctx, GW_LOG_TRACE, "%s: %s", dir, shown);
}

/* ---- values ---- */

static void value_free(struct imap_value *v)
{
	for (size_t i = 0; i < v->count; i++)
		value_free(&v->items[i]);
	free(v->items);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

void imap_response_free(struct imap_response *resp)
{
	free(resp->tag);
	free(resp->text);
	value_free(&resp->code);
	value_free(&resp->data);
	memset(resp, 0, sizeof(*resp));
}

static gw_status fail_protocol(struct imap_parser *p, const char *what)
{
	return gw_fail(p->ctx, GW_ERR_SESSION, "IMAP protocol error from %s: %s", p->io->host,
	               what);
}

static gw_status account(struct imap_parser *p, size_t bytes)
{
	p->mem += bytes;
	if (p->mem > p->max_response)
		return gw_fail(p->ctx, GW_ERR_SESSION,
		               "IMAP response from %s is larger than %zu bytes; dropping the "
		               "connection",
		               p->io->host, p->max_response);
	return GW_OK;
}

static struct imap_value *list_append(struct imap_value *list)
{
	if (list->count == list->cap) {
		list->cap = list->cap ? list->cap * 2 : 8;
		list->items = gw_xrealloc(list->items, list->cap * sizeof(*list->items));
	}
	struct imap_value *v = &list->items[list->count++];
	memset(v, 0, sizeof(*v));
	return v;
}

/* ---- reading ---- */

/* Read the next line segment (up to LF; a preceding CR is dropped). */
static gw_status read_segment(struct imap_parser *p)
{
	struct imap_io *io = p->io;
	gw_buf_reset(&p->line);
	gw_buf_append(&p->line, "", 0);
	p->pos = 0;
	for (;;) {
		const unsigned char *start = io->buf + io->pos;
		size_t avail = io->end - io->pos;
		const unsigned char *nl = memchr(start, '\n', avail);
		size_t take = nl ? (size_t)(nl - start) : avail;
		if (p->line.len + take > p->max_line + 1)
			return gw_fail(p->ctx, GW_ERR_SESSION,
			               "IMAP server %s sent a line longer than %zu bytes; dropping "
			               "the connection",
			               io->host, p->max_line);
		gw_buf_append(&p->line, start, take);
		io->pos += take;
		if (nl) {
			io->pos++;
			break;
		}
		gw_status st = imap_io_fill(io, 0);
		if (st != GW_OK)
			return st;
	}
	if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
		p->line.data[--p->line.len] = '\0';
	if (imap_trace_enabled())
		imap_trace(p->ctx, "S", p->line.data, p->line.len);
	return account(p, p->line.len);
}

gw_status imap_parser_stream_literal(struct imap_parser *p, uint64_t size, imap_chunk_fn sink,
                                     void *arg, gw_status *sink_status)
{
	return imap_parser_stream_literal_into(p, size, NULL, sink, arg, sink_status);
}

gw_status imap_parser_stream_literal_into(struct imap_parser *p, uint64_t size, imap_room_fn room,
                                          imap_chunk_fn sink, void *arg, gw_status *sink_status)
{
	struct imap_io *io = p->io;
	gw_status sunk = GW_OK;
	uint64_t left = size;
	while (left > 0) {
		if (imap_io_available(io) == 0) {
			size_t max = 0;
			void *at = room && sink && sunk == GW_OK && left >= GW_IMAP_DIRECT_MIN
			                   ? room(arg, &max)
			                   : NULL;
			if (at && max > 0) {
				size_t got = 0;
				gw_status st = imap_io_read_into(
				        io, at, max < left ? max : (size_t)left, left, &got);
				if (st != GW_OK)
					return st;
				sunk = sink(arg, at, got);
				left -= got;
				continue;
			}
			gw_status st = imap_io_fill(io, left);
			if (st != GW_OK)
				return st;
		}
		size_t n = imap_io_available(io);
		if (n > left)
			n = (size_t)left;
		if (sink && sunk == GW_OK)
			sunk = sink(arg, io->buf + io->pos, n);
		io->pos += n;
		left -= n;
	}
	if (sink_status)
		*sink_status = sunk;
	if (imap_trace_enabled())
		gw_log(p->ctx, GW_LOG_TRACE, "S: {%" PRIu64 " bytes}", size);
	return GW_OK;
}

static gw_status copy_chunk(void *arg, const void *data, size_t len)
{
	struct gw_buf *b = arg;
	gw_buf_append(b, data, len);
	return GW_OK;
}

/* ---- tokens ---- */

static char peek(const struct imap_parser *p)
{
	return p->pos < p->line.len ? p->line.data[p->pos] : '\0';
}

static bool at_end(const struct imap_parser *p)
{
	return p->pos >= p->line.len;
}

static void skip_spaces(struct imap_parser *p)
{
	while (!at_end(p) && p->line.data[p->pos] == ' ')
		p->pos++;
}

static void set_string(struct imap_value *v, enum imap_vtype type, const char *s, size_t len)
{
	v->type = type;
	v->str = gw_xstrndup(s, len);
	v->len = len;
}

/* An atom runs to a space or parenthesis; a "[...]" section inside it (as in
 * BODY[HEADER.FIELDS (MESSAGE-ID)]) is part of it. With @p in_code, a ']'
 * that closes the response code ends it. */
static gw_status parse_atom(struct imap_parser *p, struct imap_value *v, bool in_code)
{
	size_t start = p->pos;
	int brackets = 0;
	while (!at_end(p)) {
		char c = p->line.data[p->pos];
		if (brackets == 0 && (c == ' ' || c == '(' || c == ')'))
			break;
		if (c == '[')
			brackets++;
		else if (c == ']') {
			if (brackets == 0 && in_code)
				break;
			if (brackets > 0)
				brackets--;
		}
		p->pos++;
	}
	if (brackets != 0)
		return fail_protocol(p, "unbalanced '[' in an atom");
	if (p->pos == start)
		return fail_protocol(p, "empty atom");
	size_t len = p->pos - start;
	if (len == 3 && strncasecmp(p->line.data + start, "NIL", 3) == 0) {
		v->type = GW_IV_NIL;
		return GW_OK;
	}
	set_string(v, GW_IV_ATOM, p->line.data + start, len);
	return account(p, len);
}

static gw_status parse_quoted(struct imap_parser *p, struct imap_value *v)
{
	struct gw_buf out = {0};
	gw_buf_append(&out, "", 0);
	p->pos++; /* opening quote */
	while (!at_end(p)) {
		char c = p->line.data[p->pos++];
		if (c == '"') {
			v->type = GW_IV_STRING;
			v->str = out.data;
			v->len = out.len;
			return account(p, out.len);
		}
		if (c == '\\' && !at_end(p))
			c = p->line.data[p->pos++];
		gw_buf_append(&out, &c, 1);
	}
	gw_buf_free(&out);
	return fail_protocol(p, "unterminated quoted string");
}

/* "{123}" or "~{123}" (or "{123+}") at the end of the segment. */
static gw_status parse_literal_marker(struct imap_parser *p, uint64_t *size)
{
	if (peek(p) == '~')
		p->pos++;
	p->pos++; /* '{' */
	uint64_t n = 0;
	size_t digits = 0;
	while (isdigit((unsigned char)peek(p))) {
		unsigned d = (unsigned)(peek(p) - '0');
		if (n > (UINT64_MAX - d) / 10)
			return fail_protocol(p, "literal size overflows");
		n = n * 10 + d;
		digits++;
		p->pos++;
	}
	if (peek(p) == '+')
		p->pos++;
	if (digits == 0 || peek(p) != '}')
		return fail_protocol(p, "malformed literal size");
	p->pos++;
	if (!at_end(p))
		return fail_protocol(p, "literal size not at the end of a line");
	*size = n;
	return GW_OK;
}

static gw_status read_literal(struct imap_parser *p, const struct imap_value *top,
                              struct imap_value *list)
{
	uint64_t size = 0;
	gw_status st = parse_literal_marker(p, &size);
	if (st != GW_OK)
		return st;
	bool consumed = false;
	if (p->hook) {
		st = p->hook(p->hook_arg, p, top, list, size, &consumed);
		if (st != GW_OK)
			return st;
	}
	struct imap_value *v = list_append(list);
	if (consumed) {
		v->type = GW_IV_SKIPPED;
		v->len = (size_t)size;
	} else if (size <= p->max_inline_literal && p->mem + size <= p->max_response) {
		struct gw_buf bytes = {0};
		gw_buf_append(&bytes, "", 0);
		st = imap_parser_stream_literal(p, size, copy_chunk, &bytes, NULL);
		v->type = GW_IV_STRING;
		v->str = bytes.data;
		v->len = bytes.len;
		if (st == GW_OK)
			st = account(p, bytes.len);
	} else {
		gw_log(p->ctx, GW_LOG_DEBUG, "discarding a literal of %" PRIu64 " bytes from %s",
		       size, p->io->host);
		v->type = GW_IV_SKIPPED;
		v->len = (size_t)size;
		st = imap_parser_stream_literal(p, size, NULL, NULL, NULL);
	}
	if (st != GW_OK)
		return st;
	return read_segment(p);
}

/* Fill @p list with values up to @p stop (')' or ']'), or to the end of the
 * response when @p stop is 0. */
static gw_status parse_values(struct imap_parser *p, const struct imap_value *top,
                              struct imap_value *list, char stop, int depth)
{
	if (depth > GW_IMAP_MAX_DEPTH)
		return fail_protocol(p, "lists nested too deeply");
	list->type = GW_IV_LIST;
	for (;;) {
		skip_spaces(p);
		if (at_end(p)) {
			if (stop == 0)
				return GW_OK;
			return fail_protocol(p, stop == ')' ? "unterminated list"
			                                    : "unterminated response code");
		}
		char c = peek(p);
		if (c == stop) {
			p->pos++;
			return GW_OK;
		}
		gw_status st;
		if (c == ')') {
			return fail_protocol(p, "unexpected ')'");
		} else if (c == '(') {
			p->pos++;
			struct imap_value *child = list_append(list);
			st = parse_values(p, top, child, ')', depth + 1);
		} else if (c == '"') {
			st = parse_quoted(p, list_append(list));
		} else if (c == '{' || (c == '~' && p->pos + 1 < p->line.len &&
		                        p->line.data[p->pos + 1] == '{')) {
			st = read_literal(p, top, list);
		} else {
			st = parse_atom(p, list_append(list), stop == ']');
		}
		if (st != GW_OK)
			return st;
	}
}

static bool parse_cond(struct imap_parser *p, enum imap_cond *cond)
{
	static const struct {
		const char *word;
		enum imap_cond cond;
	} words[] = {{"OK", GW_IMAP_OK},
	             {"NO", GW_IMAP_NO},
	             {"BAD", GW_IMAP_BAD},
	             {"BYE", GW_IMAP_BYE},
	             {"PREAUTH", GW_IMAP_PREAUTH}};
	const char *s = p->line.data + p->pos;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		if (strncasecmp(s, words[i].word, n) == 0 && (s[n] == ' ' || s[n] == '\0')) {
			p->pos += n;
			*cond = words[i].cond;
			return true;
		}
	}
	return false;
}

static void take_text(struct imap_parser *p, struct imap_response *resp)
{
	resp->text = gw_xstrdup(p->line.data + p->pos);
	p->pos = p->line.len;
}

static gw_status parse_status(struct imap_parser *p, struct imap_response *resp)
{
	if (peek(p) == ' ')
		p->pos++;
	/* A "[" without its "]" is text from a sloppy server, not a response code. */
	if (peek(p) == '[' && strchr(p->line.data + p->pos, ']')) {
		p->pos++;
		gw_status st = parse_values(p, &resp->code, &resp->code, ']', 1);
		if (st != GW_OK)
			return st;
		if (peek(p) == ' ')
			p->pos++;
	}
	take_text(p, resp);
	return GW_OK;
}

static gw_status parse_tag(struct imap_parser *p, struct imap_response *resp)
{
	const char *s = p->line.data;
	const char *sp = strchr(s, ' ');
	if (!sp || sp == s)
		return fail_protocol(p, "malformed response line");
	resp->kind = GW_IMAP_TAGGED;
	resp->tag = gw_xstrndup(s, (size_t)(sp - s));
	p->pos = (size_t)(sp - s) + 1;
	if (!parse_cond(p, &resp->cond))
		return fail_protocol(p, "tagged response without OK, NO or BAD");
	return parse_status(p, resp);
}

gw_status imap_read_response(struct imap_parser *p, struct imap_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->code.type = GW_IV_LIST;
	resp->data.type = GW_IV_LIST;
	p->mem = 0;
	gw_status st = read_segment(p);
	if (st != GW_OK)
		return st;
	const char *s = p->line.data;
	if (s[0] == '+') {
		resp->kind = GW_IMAP_CONTINUATION;
		p->pos = s[1] == ' ' ? 2 : 1;
		take_text(p, resp);
	} else if (s[0] == '*' && s[1] == ' ') {
		resp->kind = GW_IMAP_UNTAGGED;
		p->pos = 2;
		if (parse_cond(p, &resp->cond))
			st = parse_status(p, resp);
		else
			st = parse_values(p, &resp->data, &resp->data, 0, 0);
	} else {
		st = parse_tag(p, resp);
	}
	if (st == GW_OK && !resp->text)
		resp->text = gw_xstrdup("");
	resp->mem = p->mem;
	return st;
}

/* ---- value helpers ---- */

bool imap_value_is_atom(const struct imap_value *v, const char *word)
{
	return v && v->type == GW_IV_ATOM && strcasecmp(v->str, word) == 0;
}

bool imap_value_is_string(const struct imap_value *v)
{
	return v && (v->type == GW_IV_ATOM || v->type == GW_IV_STRING);
}

bool imap_value_u64(const struct imap_value *v, uint64_t *out)
{
	if (!v || v->type != GW_IV_ATOM || v->len == 0 || v->len > 20)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < v->len; i++) {
		if (!isdigit((unsigned char)v->str[i]))
			return false;
		unsigned d = (unsigned)(v->str[i] - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

bool imap_value_u32(const struct imap_value *v, uint32_t *out)
{
	uint64_t n;
	if (!imap_value_u64(v, &n) || n > UINT32_MAX)
		return false;
	*out = (uint32_t)n;
	return true;
}

const struct imap_value *imap_list_item(const struct imap_value *v, size_t i)
{
	if (!v || v->type != GW_IV_LIST || i >= v->count)
		return NULL;
	return &v->items[i];
}

const struct imap_value *imap_list_get(const struct imap_value *v, const char *name)
{
	if (!v || v->type != GW_IV_LIST)
		return NULL;
	for (size_t i = 0; i + 1 < v->count; i += 2)
		if (imap_value_is_atom(&v->items[i], name))
			return &v->items[i + 1];
	return NULL;
}

const struct imap_value *imap_list_get_prefix(const struct imap_value *v, const char *prefix,
                                              const char **name)
{
	if (!v || v->type != GW_IV_LIST)
		return NULL;
	size_t n = strlen(prefix);
	for (size_t i = 0; i + 1 < v->count; i += 2) {
		const struct imap_value *key = &v->items[i];
		if (key->type == GW_IV_ATOM && strncasecmp(key->str, prefix, n) == 0) {
			if (name)
				*name = key->str;
			return &v->items[i + 1];
		}
	}
	return NULL;
}
