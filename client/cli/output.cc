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

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const std::size_t n = utf8_len(s, i); n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";  // U+FFFD
      ++i;
    }
  }
  return out;
}

Json json_string(std::string_view s) { return Json(valid_utf8(s)); }

Json json_opt(std::optional<std::int64_t> v) { return v ? Json(*v) : Json(nullptr); }

std::string dump(const Json& j) {
  // Every string went through valid_utf8; `replace` only makes sure dump() can never throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_str(std::string_view s) { return dump(json_string(s)); }

Json message_json_value(const Message& m) {
  Json headers = Json::array();
  for (const auto& [k, v] : m.headers) {
    Json h;
    h["key"] = json_string(k);
    h["value"] = json_string(v);
    headers.push_back(std::move(h));
  }
  Json j;
  j["topic"] = json_string(m.topic);
  j["partition"] = m.partition;
  j["offset"] = m.offset;
  j["timestamp_ms"] = m.timestamp_ms;
  j["key"] = m.key ? json_string(*m.key) : Json(nullptr);
  j["value"] = json_string(m.value);
  j["headers"] = std::move(headers);
  return j;
}

std::string message_json(const Message& m) { return dump(message_json_value(m)); }

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
