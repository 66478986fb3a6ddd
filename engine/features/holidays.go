package features

import "time"

// USHoliday reports whether d is a US federal holiday as observed (a holiday
// on Saturday is observed on Friday, on Sunday on Monday). Both shared
// affluence series are American; --holidays none turns the feature off.
func USHoliday(d time.Time) bool {
	for _, h := range usHolidays(d.Year()) {
		if h.Equal(d) {
			return true
		}
	}
	// New Year's Day of next year observed on Dec 31.
	if d.Month() == time.December && d.Day() == 31 {
		return observed(date(d.Year()+1, time.January, 1)).Equal(d)
	}
	return false
}

func usHolidays(y int) []time.Time {
	hs := []time.Time{
		observed(date(y, time.January, 1)),
		nthWeekday(y, time.January, time.Monday, 3),  // Martin Luther King Jr. Day
		nthWeekday(y, time.February, time.Monday, 3), // Washington's Birthday
		lastWeekday(y, time.May, time.Monday),        // Memorial Day
		observed(date(y, time.July, 4)),
		nthWeekday(y, time.September, time.Monday, 1), // Labor Day
		nthWeekday(y, time.October, time.Monday, 2),   // Columbus Day
		observed(date(y, time.November, 11)),
		nthWeekday(y, time.November, time.Thursday, 4), // Thanksgiving
		observed(date(y, time.December, 25)),
	}
	if y >= 2021 {
		hs = append(hs, observed(date(y, time.June, 19))) // Juneteenth
	}
	return hs
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func observed(d time.Time) time.Time {
	switch d.Weekday() {
	case time.Saturday:
		return d.AddDate(0, 0, -1)
	case time.Sunday:
		return d.AddDate(0, 0, 1)
	}
	return d
}

func nthWeekday(y int, m time.Month, wd time.Weekday, n int) time.Time {
	d := date(y, m, 1)
	for d.Weekday() != wd {
		d = d.AddDate(0, 0, 1)
	}
	return d.AddDate(0, 0, 7*(n-1))
}

func lastWeekday(y int, m time.Month, wd time.Weekday) time.Time {
	d := date(y, m+1, 1).AddDate(0, 0, -1)
	for d.Weekday() != wd {
		d = d.AddDate(0, 0, -1)
	}
	return d
}
