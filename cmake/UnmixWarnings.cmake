# Warnings as an interface target: link unmix::warnings to get them.
add_library(unmix_warnings INTERFACE)
add_library(unmix::warnings ALIAS unmix_warnings)
target_compile_options(unmix_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion>)

if(UNMIX_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
