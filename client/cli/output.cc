#include "output.h"

namespace quorumq::cli {

namespace {
// Length of the valid UTF-8 sequence starting at s[i], 0 if it is not one.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}
}  // namespace

std::string json_str(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n') {
      out += "\\n", ++i;
    } else if (c == '\t') {
      out += "\\t", ++i;
    } else if (c == '\r') {
      out += "\\r", ++i;
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    } else if (const std::size_t n = utf8_len(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
  return out;
}

void JsonObject::key(std::string_view k) {
  body_ += body_.empty() ? "{" : ",";
  body_ += json_str(k);
  body_ += ':';
}
JsonObject& JsonObject::str(std::string_view k, std::string_view v) {
  key(k);
  body_ += json_str(v);
  return *this;
}
JsonObject& JsonObject::opt_str(std::string_view k, const std::optional<std::string>& v) {
  key(k);
  body_ += v ? json_str(*v) : "null";
  return *this;
}
JsonObject& JsonObject::num(std::string_view k, std::int64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}
JsonObject& JsonObject::opt_num(std::string_view k, std::optional<std::int64_t> v) {
  key(k);
  body_ += v ? std::to_string(*v) : "null";
  return *this;
}
JsonObject& JsonObject::boolean(std::string_view k, bool v) {
  key(k);
  body_ += v ? "true" : "false";
  return *this;
}
JsonObject& JsonObject::raw(std::string_view k, std::string_view json) {
  key(k);
  body_ += json;
  return *this;
}

std::string json_int_array(const std::vector<std::int32_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

std::string json_array(const std::vector<std::string>& encoded) {
  std::string s = "[";
  for (std::size_t i = 0; i < encoded.size(); ++i) s += (i ? "," : "") + encoded[i];
  return s + "]";
}

std::string message_json(const Message& m) {
  std::vector<std::string> hs;
  for (const auto& [k, v] : m.headers) hs.push_back(JsonObject().str("key", k).str("value", v).done());
  return JsonObject()
      .str("topic", m.topic)
      .num("partition", m.partition)
      .num("offset", m.offset)
      .num("timestamp_ms", m.timestamp_ms)
      .opt_str("key", m.key)
      .str("value", m.value)
      .raw("headers", json_array(hs))
      .done();
}

std::optional<RecordFormat> RecordFormat::parse(std::string_view fmt, std::string& error) {
  RecordFormat f;
  std::string lit;
  auto flush_lit = [&] {
    if (!lit.empty()) f.pieces_.push_back({0, std::move(lit)});
    lit.clear();
  };
  for (std::size_t i = 0; i < fmt.size(); ++i) {
    const char c = fmt[i];
    if (c == '\\' && i + 1 < fmt.size()) {
      const char e = fmt[++i];
      switch (e) {
        case 'n': lit += '\n'; break;
        case 't': lit += '\t'; break;
        case 'r': lit += '\r'; break;
        case '0': lit += '\0'; break;
        case '\\': lit += '\\'; break;
        default:
          error = std::string("unknown escape \\") + e + " in --format (use \\n \\t \\r \\0 \\\\)";
          return std::nullopt;
      }
    } else if (c == '%') {
      if (i + 1 >= fmt.size()) {
        error = "--format ends with a lone % (write %% for a percent sign)";
        return std::nullopt;
      }
      const char t = fmt[++i];
      if (t == '%') {
        lit += '%';
        continue;
      }
      if (std::string_view("tpokvhTKS").find(t) == std::string_view::npos) {
        error = std::string("unknown field %") + t +
                " in --format: use %t topic, %p partition, %o offset, %k key, %v value, %h headers, %T timestamp, "
                "%K key length, %S value length, %% percent";
        return std::nullopt;
      }
      flush_lit();
      f.pieces_.push_back({t, {}});
    } else {
      lit += c;
    }
  }
  flush_lit();
  return f;
}

void RecordFormat::append(std::string& out, const Message& m) const {
  for (const auto& p : pieces_) {
    switch (p.field) {
      case 0: out += p.literal; break;
      case 't': out += m.topic; break;
      case 'p': out += std::to_string(m.partition); break;
      case 'o': out += std::to_string(m.offset); break;
      case 'k':
        if (m.key) out += *m.key;
        break;
      case 'v': out += m.value; break;
      case 'h':
        for (std::size_t i = 0; i < m.headers.size(); ++i) {
          if (i) out += ',';
          out += m.headers[i].first;
          out += '=';
          out += m.headers[i].second;
        }
        break;
      case 'T': out += std::to_string(m.timestamp_ms); break;
      case 'K': out += m.key ? std::to_string(m.key->size()) : std::string("-1"); break;
      case 'S': out += std::to_string(m.value.size()); break;
    }
  }
}

}  // namespace quorumq::cli
