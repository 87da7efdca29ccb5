1000000000000000100 33 50 apache2 51 epoll_wait < res=1 
1000000000000000200 33 50 apache2 50 accept > flags=0 
1000000000000000300 33 50 apache2 50 accept < fd=12(<4t>10.0.0.3:50140->10.0.0.21:443) tuple=10.0.0.3:50140->10.0.0.21:443 queuepct=0 
1000000000000000400 33 50 apache2 50 open > 
1000000000000000500 33 50 apache2 50 open < fd=13(<f>/etc/passwd) name=/etc/passwd flags=4097(O_RDONLY|O_CLOEXEC) mode=0 dev=200073 
1000000000000000600 33 50 apache2 50 read > fd=13(<f>/etc/passwd) size=512 
1000000000000000700 33 50 apache2 50 read < res=-11(EAGAIN) data= 
1000000000000002000 33 50 apache2 50 rename > 
1000000000000002100 33 50 apache2 50 rename < res=0 oldpath=/tmp/a newpath=/var/www/b 
1000000000000002200 0 50 apache2 51 switch > next=0 
1000000000000002300 0 50 apache2 51 switch < 
1000000000000002400 33 50 apache2 50 epoll_wait > maxevents=2 
