# Fails if a file under DIR includes a header that does I/O, threads, clocks or
# non-seeded randomness. Run by CTest as paxos_purity.
set(forbidden
  "<thread>" "<mutex>" "<condition_variable>" "<future>" "<atomic>" "<chrono>" "<ctime>"
  "<time.h>" "<random>" "<fstream>" "<iostream>" "<cstdio>" "<stdio.h>" "<filesystem>"
  "<unistd.h>" "<fcntl.h>" "<sys/" "<netinet/" "<arpa/" "<pthread.h>" "<asio" "<boost/asio"
  "<rocksdb/" "<spdlog/")
file(GLOB_RECURSE files "${DIR}/*.h" "${DIR}/*.cc")
set(bad "")
foreach(f IN LISTS files)
  if(f MATCHES "_test\\.cc$")
    continue()  # tests may use what they like
  endif()
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    foreach(h IN LISTS forbidden)
      string(FIND "${line}" "${h}" pos)
      if(NOT pos EQUAL -1)
        list(APPEND bad "${f}: ${line}")
      endif()
    endforeach()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " msg)
  message(FATAL_ERROR "src/paxos must stay pure; forbidden includes:\n  ${msg}")
endif()
list(LENGTH files n)
message(STATUS "paxos purity: ${n} files checked, no forbidden include")
