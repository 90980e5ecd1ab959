# strata_codec_report: the tool that prints docs/codecs.md's quality tables (not a test).
add_executable(strata_codec_report ${CMAKE_CURRENT_SOURCE_DIR}/codec/codec_report.cpp)
target_link_libraries(strata_codec_report PRIVATE strata::strata)
strata_project_target(strata_codec_report)
