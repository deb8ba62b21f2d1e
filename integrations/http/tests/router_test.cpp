// SPDX-License-Identifier: Apache-2.0
// The router and the request loop (session), without sockets.
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "app.hpp"
#include "response_buffer.hpp"
#include "router.hpp"
#include "session.hpp"

using namespace opreg::http;

TEST(Router, MatchesLiteralsAndParameters) {
    router r;
    r.add("GET", "/", 1);
    r.add("GET", "/users/{id}", 2);
    r.add("GET", "/users/{id}/posts/{post}", 3);
    r.add("POST", "/echo", 4);
    EXPECT_EQ(r.match("GET", "/").handler, 1);
    const route_match m = r.match("GET", "/users/123");
    ASSERT_EQ(m.result, route_match::kind::found);
    EXPECT_EQ(m.handler, 2);
    EXPECT_EQ(m.param("id"), "123");
    const route_match p = r.match("GET", "/users/7/posts/9");
    EXPECT_EQ(p.handler, 3);
    EXPECT_EQ(p.param("post"), "9");
    EXPECT_EQ(r.match("GET", "/users/").result, route_match::kind::not_found);
    EXPECT_EQ(r.match("GET", "/users").result, route_match::kind::not_found);
    EXPECT_EQ(r.match("GET", "/users/1/extra").result, route_match::kind::not_found);
    EXPECT_EQ(r.match("GET", "/nope").result, route_match::kind::not_found);
}

TEST(Router, KnownPathWithAnotherMethodIs405WithAllow) {
    router r;
    r.add("GET", "/", 1);
    r.add("POST", "/echo", 2);
    const route_match m = r.match("DELETE", "/echo");
    EXPECT_EQ(m.result, route_match::kind::method_not_allowed);
    EXPECT_EQ(m.allowed, "POST");
    EXPECT_EQ(r.match("POST", "/").allowed, "GET, HEAD");
    EXPECT_EQ(r.match("HEAD", "/").result, route_match::kind::found);
}

TEST(Session, PipelinedRequestsAreAnsweredInOrderIntoOneBuffer) {
    app a;
    session_state st;
    response_buffer out;
    const std::string two = "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /users/5 HTTP/1.1\r\nHost: t\r\n\r\n";
    const serve_result r = serve_requests({a, limits{}}, two, out, st);
    EXPECT_EQ(r.requests, 2u);
    EXPECT_EQ(r.consumed, two.size());
    const auto first = out.view().find("Hello, World!");
    const auto second = out.view().find("{\"id\":\"5\"}");
    ASSERT_NE(first, std::string::npos);
    ASSERT_NE(second, std::string::npos);
    EXPECT_LT(first, second);
    EXPECT_FALSE(st.close_after);
    EXPECT_FALSE(st.mid_request);
}

TEST(Session, AnIncompleteRequestWaitsAndConsumesNothing) {
    app a;
    session_state st;
    response_buffer out;
    const serve_result r = serve_requests({a, limits{}}, "GET / HTTP/1.1\r\nHo", out, st);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(st.mid_request);
}

TEST(Session, BodyArrivingLaterGetsOneContinueThenTheEcho) {
    app a;
    session_state st;
    response_buffer out;
    const std::string head =
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    // The head is taken into the session with what came of the body: each call passes only
    // the bytes that arrived since.
    EXPECT_EQ(serve_requests({a, limits{}}, head, out, st).consumed, head.size());
    EXPECT_EQ(out.view(), "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_TRUE(st.mid_request);
    out.clear();
    EXPECT_EQ(serve_requests({a, limits{}}, "he", out, st).consumed, 2u);
    EXPECT_TRUE(out.empty()) << "100 Continue is sent once";
    const serve_result r = serve_requests({a, limits{}}, "lloGET / HTTP/1.1\r\n", out, st);
    EXPECT_EQ(r.requests, 1u);
    EXPECT_EQ(r.consumed, 3u) << "the next request's bytes stay with the caller";
    EXPECT_NE(out.view().find("\r\n\r\nhello"), std::string::npos);
    EXPECT_TRUE(st.mid_request);
    EXPECT_FALSE(st.body);
}

// The body budget is charged for bytes that arrive, never for the length a head declares:
// heads alone hold nothing, so they cannot starve the uploads that send their bodies.
TEST(Session, TheBodyBudgetIsChargedForBytesThatArriveNotForDeclaredLengths) {
    app a;
    const limits lim;
    body_budget budget{100'000};
    const session_context cx{.application = a, .lim = lim, .budget = &budget};
    const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 90000\r\n\r\n";
    session_state held[4];
    response_buffer out;
    for (session_state& st : held) {  // 4 x 90,000 declared against 100,000
        EXPECT_EQ(serve_requests(cx, head, out, st).consumed, head.size());
        EXPECT_FALSE(st.close_after) << "a head that declares a body is not refused";
    }
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(budget.held(), 0u) << "nothing has arrived";

    session_state up;
    EXPECT_EQ(serve_requests(cx, head + std::string(30'000, 'x'), out, up).consumed,
              head.size() + 30'000);
    EXPECT_GE(budget.held(), 30'000u);
    EXPECT_LE(budget.held(), 2 * 30'000u) << "the room taken follows what arrived";
    const serve_result done = serve_requests(cx, std::string(60'000, 'y'), out, up);
    EXPECT_EQ(done.requests, 1u);
    EXPECT_NE(out.view().find(" 200 "), std::string::npos);
    EXPECT_EQ(budget.held(), 0u) << "a completed body gives its room back";

    // Two uploads declaring 90,000 each (180,000 against 100,000) go on while the room they
    // hold fits, in reads of 1,000 bytes: the room doubles as bytes come, so it stays within
    // twice what arrived (4 KiB at least): 2 x 20,000 bytes take 2 x 32 KiB.
    out.clear();
    {
        session_state one, two;
        (void)serve_requests(cx, head, out, one);
        (void)serve_requests(cx, head, out, two);
        for (int i = 0; i < 20; ++i) {
            (void)serve_requests(cx, std::string(1'000, 'c'), out, one);
            (void)serve_requests(cx, std::string(1'000, 'd'), out, two);
            ASSERT_FALSE(one.close_after || two.close_after) << "after " << i + 1 << " reads";
            EXPECT_LE(budget.held(), 2 * std::max<std::size_t>(2 * (i + 1) * 1'000, 4'096));
        }
        EXPECT_TRUE(out.empty());
    }
    EXPECT_EQ(budget.held(), 0u) << "abandoned bodies give their room back";

    // A declared length over the whole budget can never fit: refused at its head.
    session_state huge;
    (void)serve_requests(cx, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100001\r\n\r\n",
                         out, huge);
    EXPECT_TRUE(huge.close_after);
    EXPECT_NE(out.view().find("503"), std::string::npos);

    // What does arrive is bounded: 2 x 60,000 bytes held do not fit 100,000.
    out.clear();
    session_state first, second;
    (void)serve_requests(cx, head + std::string(60'000, 'a'), out, first);
    EXPECT_FALSE(first.close_after);
    (void)serve_requests(cx, head + std::string(60'000, 'b'), out, second);
    EXPECT_TRUE(second.close_after);
    EXPECT_NE(out.view().find("503"), std::string::npos);
    EXPECT_LE(budget.held(), budget.limit());
}

TEST(Session, AnErrorAnswersOnceAndCloses) {
    app a;
    session_state st;
    response_buffer out;
    const serve_result r = serve_requests({a, limits{}}, "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/9.9\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\n", out, st);
    EXPECT_EQ(r.requests, 1u);
    EXPECT_TRUE(st.close_after);
    EXPECT_NE(out.view().find("505"), std::string::npos);
    EXPECT_NE(out.view().find("Connection: close"), std::string::npos);
}

TEST(Session, HttpOneZeroClosesUnlessKeepAlive) {
    app a;
    session_state st;
    response_buffer out;
    serve_requests({a, limits{}}, "GET / HTTP/1.0\r\n\r\n", out, st);
    EXPECT_TRUE(st.close_after);
    session_state st2;
    out.clear();
    serve_requests({a, limits{}}, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", out, st2);
    EXPECT_FALSE(st2.close_after);
    EXPECT_NE(out.view().find("Connection: keep-alive"), std::string::npos);
}
