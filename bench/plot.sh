#!/usr/bin/env bash
# Plots a demo CSV (bench/demo.sh) as grouped bars: req/s per implementation for 100 and
# 1000 keep-alive connections and 16-deep pipelining. Usage: bench/plot.sh FILE.csv OUT.png
set -euo pipefail
csv=$1
png=$2
gnuplot <<GP
set terminal pngcairo size 1400,700 font "sans,10" noenhanced
set output "$png"
set datafile separator ","
set title "opreg-httpd: requests per second by implementation (server on 1 core, wrk on the other)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics rotate by -35 scale 0
set ylabel "requests per second"
set logscale y
set grid ytics
set key top left
plot "$csv" skip 1 using 2:xtic(1) title "keep-alive, 100 connections", \
     "" skip 1 using 3 title "keep-alive, 1000 connections", \
     "" skip 1 using 4 title "16-deep pipelining, 100 connections"
GP
