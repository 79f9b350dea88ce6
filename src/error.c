/* error.c -- status codes and version, generated from HB_ERRNO_MAP. */
#include "hyperbuf.h"

#define HB__STR2(x) #x
#define HB__STR(x) HB__STR2(x)

const char *hb_version_string(void) {
  return HB__STR(HB_VERSION_MAJOR) "." HB__STR(HB_VERSION_MINOR) "." HB__STR(
      HB_VERSION_PATCH);
}

const char *hb_strerror(int code) {
  switch (code) {
  case HB_OK: return "success";
  case HB_PENDING: return "pending: the waker will be called";
#define HB__ERR_MSG(name, val, msg)                                          \
  case HB_##name: return msg;
    HB_ERRNO_MAP(HB__ERR_MSG)
#undef HB__ERR_MSG
  default: return "unknown error";
  }
}

const char *hb_err_name(int code) {
  switch (code) {
  case HB_OK: return "HB_OK";
  case HB_PENDING: return "HB_PENDING";
#define HB__ERR_NAME(name, val, msg)                                         \
  case HB_##name: return "HB_" #name;
    HB_ERRNO_MAP(HB__ERR_NAME)
#undef HB__ERR_NAME
  default: return "HB_UNKNOWN";
  }
}
