/* Allocation and string helpers of the maildir sink. The plugin does not link
 * libgodwit, so it carries these few lines itself. Out of memory is fatal,
 * as everywhere in godwit. */
#include "maildir.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *md_check(void *ptr)
{
	if (!ptr)
		abort();
	return ptr;
}

void *md_xmalloc(size_t size)
{
	return md_check(malloc(size ? size : 1));
}

void *md_xcalloc(size_t count, size_t size)
{
	return md_check(calloc(count ? count : 1, size ? size : 1));
}

void *md_xrealloc(void *ptr, size_t size)
{
	return md_check(realloc(ptr, size ? size : 1));
}

char *md_xstrdup(const char *s)
{
	return md_check(strdup(s));
}

char *md_xasprintf(const char *fmt, ...)
{
	va_list ap, copy;
	va_start(ap, fmt);
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		abort();
	char *out = md_xmalloc((size_t)n + 1);
	vsnprintf(out, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return out;
}

void md_str_add(struct md_str *s, const void *data, size_t len)
{
	if (s->len + len + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 64;
		while (cap < s->len + len + 1)
			cap *= 2;
		s->data = md_xrealloc(s->data, cap);
		s->cap = cap;
	}
	memcpy(s->data + s->len, data, len);
	s->len += len;
	s->data[s->len] = '\0';
}

void md_str_addc(struct md_str *s, char c)
{
	md_str_add(s, &c, 1);
}

void md_str_adds(struct md_str *s, const char *text)
{
	md_str_add(s, text, strlen(text));
}

char *md_str_take(struct md_str *s)
{
	char *out = s->data ? s->data : md_xstrdup("");
	s->data = NULL;
	s->len = s->cap = 0;
	return out;
}
