// SPDX-License-Identifier: Apache-2.0
// llhttp_fixtures.hpp — reads llhttp's request test cases (its test/request/*.md files) into
// raw byte strings, for tests that replay them against our parser or server. Header-only.
//
// Contract
//   load_llhttp_fixtures(dir) reads every *.md file directly in `dir`, in name order, and
//   returns one fixture_case per ```http block, in file order. A missing directory gives an
//   empty vector (the caller decides to GTEST_SKIP); a block that breaks the format below
//   throws std::runtime_error, so a format change fails loudly instead of dropping cases.
//
// The markdown format (as llhttp's own runner, test/md-test.ts, reads it)
//   - A heading ("## title") names the cases under it; "<!-- meta={...} -->" before a block
//     gives its "type": "request", "request-finish" (llhttp_finish() is called at the end),
//     or "request-lenient-<flag>" (the case runs with that leniency flag on: without it,
//     llhttp rejects the input).
//   - A ```http block is the input, a ```log block after it the callbacks llhttp reports.
//   - The input is decoded in this order: drop the final newline; drop a backslash that ends
//     a line together with that line break (line continuation); turn every line break into
//     CRLF; then replace the escapes \r, \n, \t, \f, \xHH (hex, as many digits as follow)
//     and \O, \OO, \OOO (octal) with the character they name. md-test.ts does this on a
//     JavaScript string and hands llhttp its UTF-8 encoding, so an escape naming a character
//     >= 0x80 becomes two bytes ("\xff" is C3 BF: llhttp's log reports that span as 8
//     bytes for "\xffValue2"); the file's own bytes, UTF-8 already, pass through.
//     (md-test.ts also evaluates ${...}; no request fixture uses it.)
//   - llhttp rejects the input when the log has an "error code=N" line whose N is not a
//     pause (21 paused, 22 paused for CONNECT/Upgrade, 23 paused for PRI are stops that a
//     caller resumes or hands over, not errors), or a "finish=N" line with N != 0
//     (llhttp_finish() refused: the input ended inside a message).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace opreg::http::test_fixtures {

struct fixture_case {
    std::string file, title, raw;
    bool llhttp_error;
    std::string meta_type;
    // Beyond the basics: the expected llhttp log verbatim and where the block starts
    // (1-based line of its ``` fence), for messages and for telling same-titled cases apart.
    std::string log;
    std::size_t line = 0;
};

namespace detail {

inline void replace_all(std::string& s, std::string_view from, std::string_view to) {
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

inline void append_utf8(std::string& out, unsigned cp) {
    cp &= 0xFFFF;  // String.fromCharCode keeps 16 bits
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// md-test.ts's input decoding, step by step (see the header comment).
inline std::string decode_http_block(std::string in) {
    if (!in.empty() && in.back() == '\n') in.pop_back();

    std::string s;
    for (std::size_t k = 0; k < in.size(); ++k) {
        if (in[k] == '\\' && k + 1 < in.size() && (in[k + 1] == '\n' || in[k + 1] == '\r')) {
            k += (in[k + 1] == '\r' && k + 2 < in.size() && in[k + 2] == '\n') ? 2 : 1;
            continue;
        }
        s += in[k];
    }

    std::string crlf;
    for (std::size_t k = 0; k < s.size(); ++k) {
        if (s[k] == '\r' || s[k] == '\n') {
            if (s[k] == '\r' && k + 1 < s.size() && s[k + 1] == '\n') ++k;
            crlf += "\r\n";
        } else {
            crlf += s[k];
        }
    }

    replace_all(crlf, "\\r", "\r");
    replace_all(crlf, "\\n", "\n");
    replace_all(crlf, "\\t", "\t");
    replace_all(crlf, "\\f", "\f");

    std::string hex;
    for (std::size_t k = 0; k < crlf.size(); ++k) {
        if (crlf[k] == '\\' && k + 2 < crlf.size() && crlf[k + 1] == 'x' && hex_value(crlf[k + 2]) >= 0) {
            unsigned v = 0;
            std::size_t j = k + 2;
            for (; j < crlf.size() && hex_value(crlf[j]) >= 0; ++j) v = (v * 16 + unsigned(hex_value(crlf[j]))) & 0xFFFFF;
            append_utf8(hex, v);
            k = j - 1;
        } else {
            hex += crlf[k];
        }
    }

    std::string out;
    for (std::size_t k = 0; k < hex.size(); ++k) {
        if (hex[k] == '\\' && k + 1 < hex.size() && hex[k + 1] >= '0' && hex[k + 1] <= '7') {
            unsigned v = 0;
            std::size_t j = k + 1;
            for (; j < hex.size() && j < k + 4 && hex[j] >= '0' && hex[j] <= '7'; ++j) v = v * 8 + unsigned(hex[j] - '0');
            append_utf8(out, v);
            k = j - 1;
        } else {
            out += hex[k];
        }
    }
    return out;
}

// The "type" of <!-- meta={"type": "..."} -->; empty when absent.
inline std::string meta_type(std::string_view meta) {
    const std::size_t key = meta.find("\"type\"");
    if (key == std::string_view::npos) return {};
    const std::size_t open = meta.find('"', meta.find(':', key) + 1);
    const std::size_t close = meta.find('"', open + 1);
    if (open == std::string_view::npos || close == std::string_view::npos) return {};
    return std::string(meta.substr(open + 1, close - open - 1));
}

inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace detail

// llhttp's error code in a log: the first "error code=N" that is not a pause (21, 22, 23);
// -1 when only llhttp_finish() failed ("finish=N", N != 0); 0 when llhttp accepts.
inline int llhttp_error_code(std::string_view log) {
    int finish = 0;
    std::size_t pos = 0;
    while (pos < log.size()) {
        std::size_t eol = log.find('\n', pos);
        if (eol == std::string_view::npos) eol = log.size();
        const std::string_view line = log.substr(pos, eol - pos);
        pos = eol + 1;
        if (const std::size_t e = line.find(" error code="); e != std::string_view::npos) {
            const int code = std::atoi(std::string(line.substr(e + 12)).c_str());
            if (code != 21 && code != 22 && code != 23) return code;
        } else if (const std::size_t f = line.find(" finish="); f != std::string_view::npos) {
            if (std::atoi(std::string(line.substr(f + 8)).c_str()) != 0) finish = -1;
        }
    }
    return finish;
}

inline std::vector<fixture_case> load_llhttp_fixtures(const std::string& dir) {
    namespace fs = std::filesystem;
    std::vector<fixture_case> cases;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return cases;

    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file() && entry.path().extension() == ".md") files.push_back(entry.path());
    std::sort(files.begin(), files.end());

    for (const fs::path& path : files) {
        std::ifstream in(path, std::ios::binary);
        std::stringstream all;
        all << in.rdbuf();
        const std::string text = all.str();
        const std::string file = path.filename().string();
        auto where = [&](std::size_t line) { return file + ":" + std::to_string(line); };

        std::string title, meta;
        fixture_case* open_case = nullptr;  // its http block read, its log block not yet
        std::size_t line_no = 0, pos = 0;
        auto next_line = [&](std::string& line) {
            if (pos >= text.size()) return false;
            std::size_t eol = text.find('\n', pos);
            if (eol == std::string::npos) eol = text.size();
            line = text.substr(pos, eol - pos);
            pos = eol + 1;
            ++line_no;
            return true;
        };
        auto read_block = [&](std::size_t fence_line) {
            std::string body, line;
            for (;;) {
                if (!next_line(line)) throw std::runtime_error(where(fence_line) + ": unterminated code block");
                if (line == "```") return body;
                body += line;
                body += '\n';
            }
        };

        std::string line;
        while (next_line(line)) {
            if (detail::starts_with(line, "#")) {
                title = line.substr(line.find_first_not_of('#'));
                title.erase(0, title.find_first_not_of(' '));
            } else if (line.find("<!-- meta=") != std::string::npos) {
                meta = line;
            } else if (detail::starts_with(line, "```http")) {
                if (open_case) throw std::runtime_error(where(line_no) + ": http block without a log block before it");
                const std::size_t fence = line_no;
                fixture_case c{file, title, detail::decode_http_block(read_block(fence)), false,
                               detail::meta_type(meta), {}, fence};
                if (c.meta_type.empty()) throw std::runtime_error(where(fence) + ": http block without a meta type");
                cases.push_back(std::move(c));
                open_case = &cases.back();
                meta.clear();
            } else if (detail::starts_with(line, "```log")) {
                if (!open_case) throw std::runtime_error(where(line_no) + ": log block without an http block");
                open_case->log = read_block(line_no);
                open_case->llhttp_error = llhttp_error_code(open_case->log) != 0;
                open_case = nullptr;
            } else if (detail::starts_with(line, "```")) {
                read_block(line_no);  // another kind of block: not ours
            }
        }
        if (open_case) throw std::runtime_error(file + ": last http block has no log block");
    }
    return cases;
}

}  // namespace opreg::http::test_fixtures
