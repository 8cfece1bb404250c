// Admin: SCRAM users and ACLs (issue 18). Every call goes to the controller (the freshest state;
// changes are only accepted there).
#include "admin_impl.h"
#include "quorumq/protocol/scram.h"

namespace quorumq {

namespace scram = protocol::scram;

namespace {
flatbuffers::Offset<wire::AclBinding> write_binding(flatbuffers::FlatBufferBuilder& fbb, const AclBinding& a) {
  return wire::CreateAclBindingDirect(fbb, a.principal.c_str(), "*", a.allow, a.operation.c_str(),
                                      a.resource_type.c_str(), a.pattern.c_str(), a.name.c_str());
}
std::vector<AclBinding> read_bindings(const flatbuffers::Vector<flatbuffers::Offset<wire::AclBinding>>* v) {
  std::vector<AclBinding> out;
  auto s = [](const flatbuffers::String* x) { return x ? x->str() : std::string(); };
  if (v)
    for (const auto* b : *v)
      out.push_back(AclBinding{s(b->principal()), b->allow(), s(b->operation()), s(b->resource_type()),
                               s(b->pattern()), s(b->name())});
  return out;
}
flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> raw(flatbuffers::FlatBufferBuilder& fbb, const std::string& s) {
  return fbb.CreateVector(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}
}  // namespace

std::expected<void, Error> Admin::upsert_user(const std::string& name, const std::string& password, bool create_only,
                                              bool update_only, int iterations) {
  if (name.empty() || name.size() > scram::kMaxUserBytes || password.empty())
    return std::unexpected(Error{make_error_code(ClientError::invalid_argument),
                                 "a user needs a name of 1..256 bytes and a non-empty password"});
  if (iterations < scram::kMinIterations || iterations > scram::kMaxIterations)
    return std::unexpected(
        Error{make_error_code(ClientError::invalid_argument), "iterations must be 4096..1000000"});
  // Derived once, here: retries resend the same credential.
  const auto c256 = scram::make_credential(scram::Mechanism::sha256, password, iterations);
  const auto c512 = scram::make_credential(scram::Mechanism::sha512, password, iterations);
  auto r = impl_->controller_call<wire::AlterUsersResponse, client::Unit>(
      protocol::ApiId::alter_users, "set the password of user '" + name + "'",
      [=] {
        flatbuffers::FlatBufferBuilder fbb(512);
        std::vector<flatbuffers::Offset<wire::ScramCredentialInfo>> creds;
        for (const auto* c : {&c256, &c512}) {
          const auto m = fbb.CreateString(scram::mechanism_name(c->mechanism));
          const auto salt = raw(fbb, c->salt);
          const auto sk = raw(fbb, c->stored_key);
          const auto svk = raw(fbb, c->server_key);
          creds.push_back(wire::CreateScramCredentialInfo(fbb, m, c->iterations, salt, sk, svk));
        }
        std::vector<flatbuffers::Offset<wire::UserUpsert>> ups{wire::CreateUserUpsertDirect(fbb, name.c_str(), &creds)};
        fbb.Finish(wire::CreateAlterUsersRequestDirect(fbb, &ups, nullptr, create_only, update_only));
        return fbb.Release();
      },
      [](const wire::AlterUsersResponse*) { return client::Unit{}; });
  if (!r) return std::unexpected(r.error());
  return {};
}

std::expected<void, Error> Admin::delete_user(const std::string& name) {
  auto r = impl_->controller_call<wire::AlterUsersResponse, client::Unit>(
      protocol::ApiId::alter_users, "delete user '" + name + "'",
      [=] {
        flatbuffers::FlatBufferBuilder fbb(128);
        std::vector<flatbuffers::Offset<flatbuffers::String>> dels{fbb.CreateString(name)};
        fbb.Finish(wire::CreateAlterUsersRequestDirect(fbb, nullptr, &dels));
        return fbb.Release();
      },
      [](const wire::AlterUsersResponse*) { return client::Unit{}; });
  if (!r) return std::unexpected(r.error());
  return {};
}

std::expected<std::vector<UserListing>, Error> Admin::list_users() {
  return impl_->controller_call<wire::DescribeUsersResponse, std::vector<UserListing>>(
      protocol::ApiId::describe_users, "list users",
      [] {
        flatbuffers::FlatBufferBuilder fbb(64);
        fbb.Finish(wire::CreateDescribeUsersRequest(fbb));
        return fbb.Release();
      },
      [](const wire::DescribeUsersResponse* r) {
        std::vector<UserListing> out;
        if (r->users())
          for (const auto* u : *r->users()) {
            UserListing l{u->name() ? u->name()->str() : "", {}, {}};
            if (u->mechanisms())
              for (const auto* m : *u->mechanisms()) l.mechanisms.push_back(m->str());
            if (u->iterations())
              for (const auto i : *u->iterations()) l.iterations.push_back(i);
            out.push_back(std::move(l));
          }
        return out;
      });
}

std::expected<void, Error> Admin::create_acls(const std::vector<AclBinding>& acls) {
  auto r = impl_->controller_call<wire::CreateAclsResponse, client::Unit>(
      protocol::ApiId::create_acls, "add ACLs",
      [=] {
        flatbuffers::FlatBufferBuilder fbb(256);
        std::vector<flatbuffers::Offset<wire::AclBinding>> v;
        for (const auto& a : acls) v.push_back(write_binding(fbb, a));
        fbb.Finish(wire::CreateCreateAclsRequestDirect(fbb, &v));
        return fbb.Release();
      },
      [](const wire::CreateAclsResponse*) { return client::Unit{}; });
  if (!r) return std::unexpected(r.error());
  return {};
}

std::expected<std::vector<AclBinding>, Error> Admin::delete_acls(const AclBinding& filter, bool any_permission) {
  return impl_->controller_call<wire::DeleteAclsResponse, std::vector<AclBinding>>(
      protocol::ApiId::delete_acls, "remove ACLs",
      [=] {
        flatbuffers::FlatBufferBuilder fbb(256);
        std::vector<flatbuffers::Offset<wire::AclBinding>> v{write_binding(fbb, filter)};
        fbb.Finish(wire::CreateDeleteAclsRequestDirect(fbb, &v, any_permission));
        return fbb.Release();
      },
      [](const wire::DeleteAclsResponse* r) { return read_bindings(r->deleted()); });
}

std::expected<std::vector<AclBinding>, Error> Admin::list_acls(const AclBinding& filter, bool any_permission) {
  return impl_->controller_call<wire::DescribeAclsResponse, std::vector<AclBinding>>(
      protocol::ApiId::describe_acls, "list ACLs",
      [=] {
        flatbuffers::FlatBufferBuilder fbb(256);
        const auto f = write_binding(fbb, filter);
        fbb.Finish(wire::CreateDescribeAclsRequest(fbb, f, any_permission));
        return fbb.Release();
      },
      [](const wire::DescribeAclsResponse* r) { return read_bindings(r->acls()); });
}

}  // namespace quorumq
