#include "gbx_error.h"

const char *gbx_err_name(int code) {
  switch (code) {
#define GBX_ERR(sym, c, name, msg) case c: return name;
#include "gbx_errors.def"
#undef GBX_ERR
  }
  return "unknown";
}

const char *gbx_err_message(int code) {
  switch (code) {
#define GBX_ERR(sym, c, name, msg) case c: return msg;
#include "gbx_errors.def"
#undef GBX_ERR
  }
  return "unknown error";
}

int gbx_err_known(int code) {
  switch (code) {
#define GBX_ERR(sym, c, name, msg) case c: return 1;
#include "gbx_errors.def"
#undef GBX_ERR
  }
  return 0;
}
