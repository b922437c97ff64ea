/* Secret references: "${ENV_NAME}", "${file:/path}" (one trailing newline
 * stripped), or a literal. Every resolved value is registered with the log so
 * it is never printed. Errors name the reference, never a value. */
#ifndef GW_SECRET_H
#define GW_SECRET_H

#include <stdbool.h>

/* True if @p text is written as a reference (starts with "${"). A literal
 * that must start with "${" is written "$${...}" and resolves to "${...}". */
bool gw_secret_is_reference(const char *text);
/* Resolve into *out (caller frees). On failure returns false and *error
 * (caller frees) says what is wrong, e.g. "environment variable DOVECOT_PW is not set". */
bool gw_secret_resolve(const char *text, char **out, char **error);

#endif
