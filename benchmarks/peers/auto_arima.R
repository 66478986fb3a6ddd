# R forecast's auto.arima on the same series and horizon as the forecast
# benchmark: log1p of the values, weekly frequency, a 30-day forecast with
# its 90% interval. Prints the seconds the fit and forecast took (the data
# read excluded), the last line of its output. Usage: Rscript auto_arima.R FILE
suppressMessages(library(forecast))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
y <- ts(log1p(d$value), frequency = 7)
t0 <- proc.time()[["elapsed"]]
f <- forecast(auto.arima(y), h = 30, level = 90)
cat(sprintf("%.3f\n", proc.time()[["elapsed"]] - t0))
