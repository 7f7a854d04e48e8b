#include "common/kube/client_transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mcl::kube::internal {

pplx::cancellation_token_source LinkedSource(pplx::cancellation_token outer) {
  return outer.is_cancelable()
             ? pplx::cancellation_token_source::create_linked_source(outer)
             : pplx::cancellation_token_source();
}

void ConfigureTls(boost::asio::ssl::context& ctx, const std::string& ca,
                  const std::string& cert, const std::string& key) {
  if (!ca.empty()) {
    // Trust exactly the configured CA(s), not the system roots (as kubectl
    // does).
    SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
    ctx.add_certificate_authority(boost::asio::buffer(ca));
  }
  if (!cert.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(cert));
    ctx.use_private_key(boost::asio::buffer(key),
                        boost::asio::ssl::context::pem);
  }
}

absl::Status FromException(std::exception_ptr e, const std::string& what,
                           bool deadline_hit, bool cancelled,
                           absl::Duration timeout, const Config& config) {
  std::string deadline_msg = absl::StrCat(
      what, ": no complete response within ", absl::FormatDuration(timeout));
  try {
    std::rethrow_exception(e);
  } catch (const web::http::http_exception& ex) {
    std::string msg = ex.what();
    if (deadline_hit) return absl::DeadlineExceededError(deadline_msg);
    if (cancelled)
      return absl::CancelledError(absl::StrCat(what, ": cancelled"));
    if (ex.error_code() == std::errc::timed_out) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": timed out: no data for ",
                       absl::FormatDuration(timeout), " (", msg, ")"));
    }
    if (absl::StrContains(msg, "SSL handshake") ||
        absl::StrContains(msg, "handshake")) {
      return absl::UnavailableError(absl::StrCat(
          what, ": TLS handshake failed (", msg,
          "): the server's certificate is not trusted: is it "
          "signed by ",
          config.ca_pem.empty() ? "a system-trusted CA"
                                : "the CA given in the config",
          " and issued for the server's host name/IP? (", config.source, ")"));
    }
    if (ex.error_code().value() == ENOENT) {
      // boost reports end-of-stream as ENOENT ("No such file or directory").
      return absl::UnavailableError(
          absl::StrCat(what, ": ", msg, " (connection closed by the server)"));
    }
    if (absl::StrContains(msg, "Failed to connect")) {
      // cpprestsdk reports a refused connection as "host unreachable".
      return absl::UnavailableError(absl::StrCat(
          what, ": cannot connect (refused or unreachable): ", msg));
    }
    return absl::UnavailableError(
        absl::StrCat(what, ": ", msg, " (", ex.error_code().message(), ")"));
  } catch (const pplx::task_canceled&) {
    if (deadline_hit) return absl::DeadlineExceededError(deadline_msg);
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  } catch (const std::exception& ex) {
    if (deadline_hit) return absl::DeadlineExceededError(deadline_msg);
    if (cancelled)
      return absl::CancelledError(absl::StrCat(what, ": cancelled"));
    return absl::InternalError(absl::StrCat(what, ": ", ex.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(what, ": unknown exception"));
  }
}

}  // namespace mcl::kube::internal
