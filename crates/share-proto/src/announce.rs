//! Announce and scrape types shared by the tracker and its clients (BEP 3, 7, 23, 48).
