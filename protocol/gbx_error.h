/* gbx_error.h - the error codes of Gearbox, generated from gbx_errors.def.
 * Shared by server and client; the wire carries the numeric code. */
#ifndef GBX_ERROR_H
#define GBX_ERROR_H

typedef enum gbx_err {
#define GBX_ERR(sym, code, name, msg) GBX_E_##sym = code,
#include "gbx_errors.def"
#undef GBX_ERR
} gbx_err_t;

/* Short stable name of a code ("queue_not_found"); "unknown" if not in the table. */
const char *gbx_err_name(int code);
/* Human-readable default message of a code; never NULL. */
const char *gbx_err_message(int code);
/* 1 if code is in the table. */
int gbx_err_known(int code);

#endif
